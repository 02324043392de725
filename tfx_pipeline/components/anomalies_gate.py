"""AnomaliesGate: stops the run when ExampleValidator found anomalies.

ExampleValidator records anomalies but succeeds; this component fails with a message naming
each split, feature and problem, and Transform waits for it, so no model is trained on data
that breaks the schema.
"""

import os
from typing import Dict, List

from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"

class DataAnomaliesError(RuntimeError):
    """The examples do not match the schema."""

def split_anomalies(anomalies_uri: str, split_names: List[str]) -> Dict[str, List[str]]:
    """{split: ["feature: short description (description)", ...]} of the splits with any."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = {}
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        proto = anomalies_pb2.Anomalies()
        proto.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        lines = [f"{feature}: {info.short_description} ({info.description})"
                 for feature, info in sorted(proto.anomaly_info.items())]
        if proto.HasField("dataset_anomaly_info"):
            info = proto.dataset_anomaly_info
            lines.append(f"(dataset): {info.short_description} ({info.description})")
        if lines:
            found[split] = lines
    return found

def message(found: Dict[str, List[str]], anomalies_uri: str) -> str:
    lines = [f"the examples do not match the schema ({anomalies_uri}):"]
    for split, problems in found.items():
        lines += [f"  split {split}: {problem}" for problem in problems]
    return "\n".join(lines)

@tfx.dsl.components.component
def AnomaliesGate(  # noqa: N802
        anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
        code_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Raises DataAnomaliesError when any split has an anomaly.

    Args:
      code_fingerprint: `tfx_pipeline.fingerprint.code_fingerprint` of this component (TFX's
        cache key follows the code); otherwise unused.
    """
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    found = split_anomalies(anomalies.uri, splits)
    if found:
        raise DataAnomaliesError(message(found, anomalies.uri))
