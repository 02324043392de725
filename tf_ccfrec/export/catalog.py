"""New catalog items served without retraining (`ccfrec catalog add`): their texts through the
model's own sentence encoder, the code artifact's frozen PCA and codebooks and the trained
fusion give their vectors; the served model's newest version is written again, as the next
version, with the new items appended.

- Existing items keep their vectors bit for bit (read from the served version, not recomputed).
- An id already in the catalog with new text is encoded again and its vector replaced; with the
  same text it is left as it is.
- New items have popularity 0 (they are never the empty-history fallback).
- The version is written whole (staged, completion marker last) or not at all; a running
  `ccfrec serve` picks it up.

Item files (`tf_ccfrec.data.item_files`): an LC-Rec `<D>.item.json`, an Amazon Reviews 2023
`meta_*.jsonl[.gz]`, or JSON Lines with "item_id" and one string per text view of the codes (e.g.
"title", "brand", "categories", "description"); a view may be "" but not every view of an item.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.data.item_files import read_item_file


FUSION_BATCH = 2048  # new items fused at a time
ADDED_TEXTS = "added_items.json"  # in assets.extra/: {item id: {view: text}} added since training


def newest_version(base: str, name: str) -> Tuple[int, str]:
    """(number, directory) of the newest whole version under `<base>/<name>/`.

    Raises:
      FileNotFoundError: there is none.
    """
    from tf_ccfrec.export.saved_model import version_directories

    directory = storage.join(base, name)
    for version, path in sorted(version_directories(directory).items(), reverse=True):
        if storage.is_complete(path):
            return version, path
    raise FileNotFoundError(f"{directory}: no whole exported version to add items to")


def add_items(base: str, name: str, items_path: str, cache_dir: Optional[str] = None,
              encoder_dir: Optional[str] = None, format_name: str = "jsonl"
              ) -> Dict[str, object]:
    """Writes `<base>/<name>/<newest + 1>/`: the newest version with the items of `items_path`
    added (`extend_version`). Returns a summary (versions, counts, seconds).

    Raises:
      DataError: a bad item file (nothing written).
      ValueError: an export this cannot extend (see `extend_version`), or nothing to add.
    """
    started = time.time()
    version, path = newest_version(base, name)
    views = export_views(path)
    texts = read_item_file(items_path, views, format_name)
    output = storage.join(base, name, str(version + 1))
    summary = extend_version(path, texts, output, cache_dir=cache_dir, encoder_dir=encoder_dir,
                             info={"from_version": version,
                                   "catalog_added_from": storage.absolute(items_path)})
    return {"version": version + 1, "from_version": version, **summary,
            "seconds": round(time.time() - started, 1)}


def _run_of(path: str) -> Tuple[Dict[str, object], str, Dict[str, object]]:
    """(export info, training run directory, its config.json) of an exported version,
    checked."""
    from tf_ccfrec.export import saved_model

    info = storage.read_json(storage.join(path, saved_model.EXPORT_INFO))
    run_dir = info.get("run")
    if not run_dir or not storage.exists(storage.join(run_dir, "config.json")):
        raise ValueError(f"{path}: the export records no training run this can read "
                         f"({run_dir!r}); export it with `ccfrec export --model-dir RUN`")
    if info.get("model") != "ccfrec":
        raise ValueError(f"{path}: a {info.get('model')} export; only CCFRec (no item-id "
                         "table) serves items it was not trained on")
    return info, run_dir, storage.read_json(storage.join(run_dir, "config.json"))


def export_codes(path: str):
    """The code artifact an exported version's model was trained with (its PCA and codebooks
    code new items), in the model's item order."""
    from tf_ccfrec.models.run_directory import run_codes

    _, run_dir, run = _run_of(path)
    return run_codes(run_dir, run["codes"])


def export_views(path: str) -> List[str]:
    """The text views of an exported version's codes."""
    from tf_ccfrec.codes import artifact as artifact_lib

    codes = _run_of(path)[2]["codes"]
    return list(storage.read_json(storage.join(codes, artifact_lib.MANIFEST_FILE))["views"])


def trained_texts(path: str, artifact) -> Dict[str, Dict[str, str]]:
    """{item id: {view: text}} of the catalog an exported version's codes (`artifact`, its
    `export_codes`) were built from: the prepared data of a `ccfrec train` run, or the catalog
    examples of a pipeline run ({} when neither is recorded), plus the items added since."""
    from tf_ccfrec.data import tfrecords

    run = _run_of(path)[2]
    views = list(artifact.views)
    texts: Dict[str, Dict[str, str]] = {}
    catalog = artifact.manifest.get("catalog")
    if run.get("prepared"):
        texts = tfrecords.read_catalog(run["prepared"], views)[1]
    elif catalog:
        files = sorted(storage.glob(storage.join(catalog, "Split-catalog", "*")))
        if files:
            _, items, _ = tfrecords.read_catalog_files(files)
            texts = {item: {view: values.get(view, "") for view in views}
                     for item, values in items.items()}
    return {**texts, **added_texts(path)}


def added_texts(path: str) -> Dict[str, Dict[str, str]]:
    """{item id: {view: text}} of the items added to an exported version since training."""
    added = storage.join(path, "assets.extra", ADDED_TEXTS)
    return storage.read_json(added) if storage.exists(added) else {}


def extend_version(path: str, texts: Dict[str, Dict[str, str]], output: str,
                   cache_dir: Optional[str] = None, encoder_dir: Optional[str] = None,
                   coded=None, info: Optional[Dict[str, object]] = None) -> Dict[str, object]:
    """The library call under `ccfrec catalog add` and the pipeline's catalog refresh: writes
    `output`, the exported version at `path` with the items of `texts` ({item id: {view:
    text}}) that are new or whose text changed, coded by the model's own encoder and codebooks
    and fused by its trained fusion (with the item-ID variant, an item of the training catalog
    whose text changed keeps its id's vector; added items have none). Existing vectors are
    copied bit for bit; new items have popularity 0; ids the export maps by another lookup
    (the pipeline's tf.Transform graph) keep it, and the new ids follow (`added_ids`).

    Args:
      coded: the texts' codes already computed (a `CodeArtifact` holding every item of
        `texts`, e.g. the codes component's "existing codebooks" output); None: encode here.
      info: extra facts recorded in the new version's `assets.extra/ccfrec.json`.

    Returns:
      counts: items, added, reencoded, unchanged, embedded_texts, cached_texts.

    Raises:
      ValueError: an export this cannot extend (no training run recorded, not CCFRec, a
        lookup it did not save), or nothing new in `texts` (no version written).
    """
    import tensorflow as tf

    from tf_ccfrec.codes import artifact as artifact_lib, encode
    from tf_ccfrec.export import added_ids, saved_model
    from tf_ccfrec.export.serving_module import RetrievalModule
    from tf_ccfrec.layers.code_embedding import codes_to_tokens
    from tf_ccfrec.models.run_directory import load_run

    base_info, run_dir, _ = _run_of(path)
    served = saved_model.load(path)
    model, run = load_run(run_dir)
    artifact = export_codes(path)
    catalog_texts = trained_texts(path, artifact)

    ids = [x.decode() for x in served.item_ids.numpy()[1:]]
    table = served.item_table.numpy()
    history = served.history_table.numpy() if model.config.history_vector != "paper" else None
    popularity = np.concatenate([[0], np.rint(np.expm1(served.log_popularity.numpy()))])
    position = {item: i for i, item in enumerate(ids)}
    changed = [i for i in texts if i in position and catalog_texts.get(i) != texts[i]]
    added = [i for i in texts if i not in position]
    if not changed and not added:
        raise ValueError(f"every item is in {path} with the same texts; no version written")
    if coded is None:
        coded = encode.encode_texts(artifact, changed + added, texts, catalog_texts,
                                    encoder_dir=encoder_dir, cache_dir=cache_dir)
        counts = {"embedded_texts": coded["embedded"], "cached_texts": coded["cached"]}
    else:
        coded = artifact_lib.reorder(coded, changed + added)
        coded = {"codes": coded.codes, "view_vectors": coded.view_vectors}
        counts = {"embedded_texts": 0, "cached_texts": 0}
    tokens = codes_to_tokens(coded["codes"].astype(np.int32), artifact.config.codebook_size)
    rows, history_rows = [], []
    for start in range(0, len(tokens), FUSION_BATCH):
        part = tokens[start:start + FUSION_BATCH]
        vectors, _ = model.fuse(part, tf.constant(
            coded["view_vectors"][start:start + FUSION_BATCH]), training=False)
        rows.append(vectors.numpy())
        if history is not None:  # "release": the encoder reads the vector less its codes' mean
            history_rows.append(rows[-1] - tf.reduce_mean(model.code_embedding(part),
                                                          axis=-2).numpy())
    rows = np.concatenate(rows)
    history_rows = np.concatenate(history_rows) if history is not None else None
    if model.config.item_id_buckets:
        # The item-ID variant: an item of the model's training catalog keeps its id's vector
        # when its text changes; items added since training have none.
        trained = {item: i + 1 for i, item in enumerate(run["item_ids"])}
        terms = model.id_vectors(tf.constant([trained.get(item, 0) for item in changed + added],
                                             tf.int32)).numpy()
        rows = rows + terms
        if history is not None:
            history_rows = history_rows + terms
    for k, item in enumerate(changed):
        table[position[item] + 1] = rows[k]
        if history is not None:
            history[position[item] + 1] = history_rows[k]
    table = np.concatenate([table, rows[len(changed):]])
    if history is not None:
        history = np.concatenate([history, history_rows[len(changed):]])
    popularity = np.concatenate([popularity, np.zeros(len(added))]).astype(np.int64)
    all_ids = ids + added
    lookup = (added_ids.extend(served, added) if getattr(served, "id_lookup", None) is not None
              else None)
    module = RetrievalModule(model.encoder, table, all_ids, popularity, model.config.temperature,
                             model.config.max_history, int(base_info["top_k"]),
                             id_lookup=lookup,
                             sampled_negatives=run["train_config"]["sampled_negatives"],
                             seed=run["train_config"]["seed"], history_vectors=history,
                             similarity=model.config.similarity,
                             sampled_protocol=run["train_config"].get("sampled_protocol",
                                                                      "uniform"))
    new_texts = {**added_texts(path), **{item: texts[item] for item in changed + added}}
    saved_model.write_module(module, all_ids, output, bool(base_info.get("scann")), info={
        **base_info, **(info or {}), "added_items": len(added), "reencoded_items": len(changed)},
        extra_json={ADDED_TEXTS: new_texts})
    return {"path": storage.absolute(output), "items": len(all_ids), "added": len(added),
            "reencoded": len(changed), "unchanged": len(texts) - len(added) - len(changed),
            **counts}
