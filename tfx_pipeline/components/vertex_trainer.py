"""CCFRecTrainer on Vertex AI Training: TFX's Vertex Trainer extension, starting a CustomJob
whose every worker (the chief and N-1 workers, TF_CONFIG set by Vertex) runs CCFRecTrainer's own
executor, so `run_fn` trains under MultiWorkerMirroredStrategy (`tf_ccfrec.distribute`).

The job comes from the Trainer's custom_config (`VertexTraining.custom_config`); this module is
imported only when a pipeline hands the Trainer to Vertex (the extension pulls in the Cloud
clients).
"""

from __future__ import annotations

from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

from tfx_pipeline.components import trainer


class VertexExecutor(vertex_executor.GenericExecutor):
    """Starts the CustomJob; its workers run `trainer.Executor` (codes included)."""

    def _GetExecutorClass(self):
        return trainer.Executor
