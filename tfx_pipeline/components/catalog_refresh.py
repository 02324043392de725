"""CatalogRefresh: a new model version for a changed catalog, without the Trainer.

Day two's catalog-only run: the latest blessed model, extended with the catalog's new items and
the items whose text changed (`tf_ccfrec.export.catalog.extend_version`), coded by the codes
component in its "existing codebooks" mode and fused by the model's trained fusion. Existing
vectors are copied bit for bit; the tf.Transform id lookup stays, the new ids follow it. The
output is a Model artifact like the Trainer's (`Format-Serving/`), for the Evaluator and the
Pusher.
"""

from tfx import v1 as tfx
from tfx.types import standard_artifacts

from tfx_pipeline.components.semantic_codes import SemanticCodes, read_catalog

CATALOG_SPLIT = "catalog"


@tfx.dsl.components.component
def CatalogRefresh(  # noqa: N802  (TFX component names are classes)
        base_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        codes: tfx.dsl.components.InputArtifact[SemanticCodes],
        catalog: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        model: tfx.dsl.components.OutputArtifact[standard_artifacts.Model],
        code_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Writes `model` = `base_model` with the catalog's new and changed items.

    Args:
      base_model: the model to extend (the latest blessed one).
      codes: the catalog's codes under the base model's codebooks (SemanticCodesGen with
        `base_model`).
      catalog: the catalog examples those codes were made from.
      code_fingerprint: `tfx_pipeline.fingerprint.code_fingerprint` (the cache key follows the
        code); otherwise unused.
    """
    from tf_ccfrec.codes import artifact as artifact_lib
    from tf_ccfrec.export import catalog as catalog_lib
    from tfx.types import artifact_utils
    from tfx.utils import path_utils

    served = path_utils.serving_model_path(base_model.uri)
    coded = artifact_lib.load(codes.uri)
    _, items, _ = read_catalog(artifact_utils.get_split_uri([catalog], CATALOG_SPLIT))
    texts = {item: {view: values.get(view, "") for view in coded.views}
             for item, values in items.items()}
    summary = catalog_lib.extend_version(
        served, texts, path_utils.serving_model_path(model.uri), coded=coded,
        info={"refreshed_from": base_model.uri, "catalog": catalog.uri})
    for name in ("items", "added", "reencoded", "unchanged"):
        model.set_int_custom_property(name, int(summary[name]))
    model.set_string_custom_property("refreshed_from", base_model.uri)
