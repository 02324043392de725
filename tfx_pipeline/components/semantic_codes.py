"""SemanticCodesGen: the catalog's text views -> a semantic-code artifact (keras-nlp sentence
embeddings, per-view PCA, PQ or RQ), by `tf_ccfrec.codes`.

A Python-function component: TFX caches it on its inputs (the catalog examples) and
parameters, so an unchanged catalog is not embedded again. Its output directory holds what
`ccfrec codes build` writes (`codes.npz`, `codes.json`).

With a `base_model` (day two: the latest blessed model), nothing is fitted: the catalog is
coded with the PCA and codebooks that model was trained with (`tf_ccfrec.codes.encode.recode`),
so its weights read the new codes (warm start, catalog refresh); items whose texts it was
trained on keep their codes exactly.

The texts the embedding cache lacks are embedded with Beam RunInference on the pipeline's Beam
runner (`tf_ccfrec.text.beam_embeddings`): DirectRunner's worker processes locally
(`direct_num_workers`, `direct_running_mode=multi_processing`), Dataflow's workers with
`--runner=DataflowRunner` (the cache then a `gs://` directory every worker writes).
"""


import os
from typing import Dict, List, Tuple

import apache_beam as beam
from tfx import v1 as tfx
from tfx.types import artifact, artifact_utils, standard_artifacts

CATALOG_SPLIT = "catalog"


class SemanticCodes(artifact.Artifact):
    """A directory written by `tf_ccfrec.codes.artifact.save`."""

    TYPE_NAME = "tfx_pipeline.SemanticCodes"  # a Kubeflow V2 title and import path


def read_catalog(examples_uri: str) -> Tuple[List[str], Dict[str, Dict[str, str]], List[str]]:
    """(item ids in order, {item: {view: text}}, views) from the catalog split's TFRecords."""
    import tensorflow as tf

    from tf_ccfrec.data import tfrecords

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, "*")))
    if not files:
        raise ValueError(f"{examples_uri}: the catalog split has no files")
    return tfrecords.read_catalog_files(files)


@tfx.dsl.components.component(use_beam=True)
def SemanticCodesGen(  # noqa: N802  (TFX component names are classes)
        catalog: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        codes: tfx.dsl.components.OutputArtifact[SemanticCodes],
        base_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
        method: tfx.dsl.components.Parameter[str] = "pq",
        pca_dim: tfx.dsl.components.Parameter[int] = 128,
        codes_per_view: tfx.dsl.components.Parameter[int] = 4,
        codebook_size: tfx.dsl.components.Parameter[int] = 256,
        seed: tfx.dsl.components.Parameter[int] = 0,
        views: tfx.dsl.components.Parameter[str] = "",
        embedding_cache: tfx.dsl.components.Parameter[str] = "",
        code_fingerprint: tfx.dsl.components.Parameter[str] = "",
        encoder_precision: tfx.dsl.components.Parameter[str] = "float32",
        beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Builds the codes of every catalog item.

    Args:
      base_model: a pushed-style Model artifact (its `Format-Serving` export) whose codebooks
        code the catalog; None: fit them on this catalog.
      views: comma-separated text views to use (default every `text_<view>` of the catalog).
      embedding_cache: embedding cache directory on any filesystem ("" : none; TFX's own cache
        already skips an unchanged catalog).
      code_fingerprint: `tfx_pipeline.fingerprint.code_fingerprint` of this component (TFX's
        cache key follows the code); otherwise unused.
      encoder_precision: the sentence encoder's ("float32", "bfloat16", "int8"; docs/scale.md)
        for fresh codebooks; with `base_model`, the base's codes' own precision is used.
      beam_pipeline: given by TFX, from the pipeline's Beam arguments.
    """
    from tf_ccfrec.codes import artifact as artifact_lib
    from tf_ccfrec.codes.build import codes_from_texts
    from tf_ccfrec.codes.config import CodesConfig

    uri = artifact_utils.get_split_uri([catalog], CATALOG_SPLIT)
    item_ids, items, found = read_catalog(uri)
    chosen = [v for v in views.split(",") if v] or found
    unknown = sorted(set(chosen) - set(found))
    if unknown:
        raise ValueError(f"views {unknown} are not in the catalog (it has {found})")
    from tf_ccfrec.text import beam_embeddings

    threads = beam_embeddings.worker_threads(beam_pipeline.options)
    if base_model is not None:
        from tf_ccfrec.codes import encode
        from tf_ccfrec.export import catalog as catalog_lib
        from tfx.utils import path_utils

        served = path_utils.serving_model_path(base_model.uri)
        base = catalog_lib.export_codes(served)
        missing = sorted(set(base.views) - set(found))
        if missing:
            raise ValueError(f"the base model's codes read the views {base.views}; the "
                             f"catalog lacks {missing}")
        built = encode.recode(base, item_ids, items, catalog_lib.trained_texts(served, base),
                              cache_dir=embedding_cache or None,
                              manifest={"catalog": catalog.uri, "codebooks_of": served},
                              beam_pipeline=beam_pipeline, worker_threads=threads)
        chosen = list(base.views)
        codes.set_string_custom_property("codebooks_of", base_model.uri)
    else:
        config = CodesConfig(method=method, pca_dim=pca_dim, codes_per_view=codes_per_view,
                             codebook_size=codebook_size, seed=seed)
        built = codes_from_texts(item_ids, items, chosen, config, cache_dir=embedding_cache,
                                 manifest={"catalog": catalog.uri},
                                 precision=encoder_precision, beam_pipeline=beam_pipeline,
                                 worker_threads=threads)
    artifact_lib.save(codes.uri, built, overwrite=True)
    usage = built.manifest["usage"]
    codes.set_int_custom_property("items", len(item_ids))
    codes.set_string_custom_property("views", ",".join(chosen))
    codes.set_float_custom_property("collision_rate", float(usage.get("collision_rate", 0.0)))
