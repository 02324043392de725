"""CuratedSchemaGen: the curated schema of the interaction examples, read at run time from the
installed `tfx_pipeline` package (`tfx_pipeline/schema/interactions.pbtxt`), as a Schema
artifact.

TFX's ImportSchemaGen takes a file path, which a compiled Kubeflow spec would have to carry:
a path of the machine that compiled it. This component names no path; the container reads the
schema its own installed package ships.
"""

import importlib.resources

from tfx import v1 as tfx
from tfx.types import standard_artifacts

SCHEMA_RESOURCE = "schema/interactions.pbtxt"
SCHEMA_FILE = "schema.pbtxt"  # the file name SchemaGen and ImportSchemaGen write


def curated_schema_text() -> str:
    """The curated schema (text proto) of the installed package, parsed to check it."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    text = importlib.resources.files("tfx_pipeline").joinpath(SCHEMA_RESOURCE).read_text()
    text_format.Parse(text, schema_pb2.Schema())
    return text


@tfx.dsl.components.component
def CuratedSchemaGen(  # noqa: N802
        schema: tfx.dsl.components.OutputArtifact[standard_artifacts.Schema],
        code_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Writes the installed package's curated schema to the artifact's `schema.pbtxt`.

    Args:
      code_fingerprint: `tfx_pipeline.fingerprint.code_fingerprint` of this component (it
        covers the schema file, so an edited schema re-runs validation and what follows).
    """
    from tf_ccfrec import storage

    storage.write_text(storage.join(schema.uri, SCHEMA_FILE), curated_schema_text())
