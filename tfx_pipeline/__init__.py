"""The TFX pipeline that builds, evaluates and pushes CCFRec models.

The pipeline's own artifact types are reachable here, as `tfx_pipeline.<Type>`: that is their
TYPE_NAME, which the Kubeflow V2 compiler writes as the artifact's schema title and TFX's
Kubeflow V2 entrypoint imports as a class path (a title must be `<namespace>.<Type>`). They load
on first use (PEP 562), so importing the package imports no TFX.
"""

ARTIFACT_TYPES = {"SemanticCodes": "tfx_pipeline.components.semantic_codes",
                  "EvaluationReport": "tfx_pipeline.components.evaluation_report"}


def __getattr__(name):
    if name in ARTIFACT_TYPES:
        import importlib

        return getattr(importlib.import_module(ARTIFACT_TYPES[name]), name)
    raise AttributeError(f"module 'tfx_pipeline' has no attribute {name!r}")
