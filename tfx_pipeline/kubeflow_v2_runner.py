"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines: a PipelineSpec JSON
whose every component runs in `image` (see the repository's Dockerfile).

    ccfrec pipeline compile --output ccfrec_pipeline.json --image IMAGE \\
        --pipeline-root gs://BUCKET/root --input gs://BUCKET/data/office --format lcrec \\
        --serving-model-dir gs://BUCKET/serving/ccfrec [--beam-arg=--runner=DataflowRunner ...]
"""

from __future__ import annotations

import os

from tfx_pipeline.pipeline.configs import PipelineConfig

DEFAULT_IMAGE = "ghcr.io/tf-ccfrec/ccfrec-pipeline:latest"


def compile_pipeline(config: PipelineConfig, output_file: str,
                     image: str = DEFAULT_IMAGE) -> str:
    """Writes the PipelineSpec JSON to `output_file` (local or a URI; whole or not at all);
    returns its path."""
    import tempfile

    from tfx import v1 as tfx

    from tf_ccfrec import storage
    from tfx_pipeline.pipeline.pipeline import create_pipeline

    output_file = storage.absolute(output_file)
    # local-only: the compiler writes to a local directory; the result is copied by gfile.
    with tempfile.TemporaryDirectory(prefix="ccfrec-compiling-") as staging:
        runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
            config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
                default_image=image),
            output_dir=staging, output_filename="pipeline.json")
        runner.run(create_pipeline(config))
        storage.write_bytes(output_file, storage.read_bytes(os.path.join(staging,
                                                                         "pipeline.json")))
    return output_file
