"""Runs the pipeline with TFX's LocalDagRunner (Beam's DirectRunner for the data components)
and ML Metadata in a local SQLite file.

    python -m tfx_pipeline.local_runner --input data/office --format lcrec  (see --help)
or `ccfrec pipeline run`, which also prints the evaluation.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Dict

from tfx_pipeline.pipeline.configs import PipelineConfig


class PipelineTerminated(Exception):
    """SIGTERM arrived; raised inside the running component so TFX records its execution as
    failed (not left RUNNING) before the process exits."""


def _terminate(signum, frame):
    raise PipelineTerminated(f"signal {signum}: pipeline run stopped; run it again to resume "
                             f"(finished components come from the cache)")


def metadata_path(config: PipelineConfig) -> str:
    return config.metadata_path or os.path.join(config.pipeline_root, "metadata.sqlite")


def run(config: PipelineConfig) -> Dict[str, Any]:
    """Runs the pipeline to the end; returns `summary` of its outputs."""
    from tfx import v1 as tfx

    from tfx_pipeline.pipeline.pipeline import create_pipeline
    from tfx_pipeline import outputs

    path = metadata_path(config)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pipeline = create_pipeline(
        config, tfx.orchestration.metadata.sqlite_metadata_connection_config(path))
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return outputs.summary(path, config.pipeline_name)
