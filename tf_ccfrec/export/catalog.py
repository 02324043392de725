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

Item files are an LC-Rec `<D>.item.json`, an Amazon Reviews 2023 `meta_*.jsonl[.gz]`, or JSON
Lines: one object per line with "item_id" and one string per text view of the codes (e.g. "title", "brand", "categories", "description"); a view may be "" but not every
view of an item. Texts are cleaned as the catalog's were (`tf_ccfrec.data.text.clean_text`).
"""

from __future__ import annotations

import json
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.data.errors import DataError
from tf_ccfrec.data.text import clean_text


FUSION_BATCH = 2048  # new items fused at a time


FORMATS = ("jsonl", "lcrec", "amazon2023")


def read_item_file(path: str, views: List[str], format_name: str = "jsonl"
                   ) -> Dict[str, Dict[str, str]]:
    """{item id: {view: cleaned text}} of an item file: JSON Lines (`read_items`), an LC-Rec
    `<D>.item.json`, or an Amazon Reviews 2023 `meta_<Category>.jsonl[.gz]`.

    Raises:
      DataError: naming the file and the item or line at fault (nothing is skipped).
    """
    from tf_ccfrec.data import amazon2023, lcrec
    from tf_ccfrec.data.errors import ErrorPolicy

    if format_name == "jsonl":
        return read_items(path, views)
    if format_name == "lcrec":
        items, _ = lcrec.read_item_json(path, ErrorPolicy("raise"), views)
    elif format_name == "amazon2023":
        items = amazon2023.read_meta(path, views, ErrorPolicy("raise"))
    else:
        raise DataError(f"unknown item file format {format_name!r}; known: "
                        f"{', '.join(FORMATS)}")
    for item, texts in items.items():
        if not any(texts.values()):
            raise DataError(f"{path}: item {item!r} has no text in any view {views}")
    if not items:
        raise DataError(f"{path}: no items")
    return items


def read_items(path: str, views: List[str]) -> Dict[str, Dict[str, str]]:
    """{item id: {view: text}} of a JSON Lines item file, in file order.

    Raises:
      DataError: naming the file, line and field: not JSON, not an object, a missing or empty
        "item_id", a duplicate id, a view that is not a string, no text in any view, bytes
        that are not UTF-8.
    """
    items: Dict[str, Dict[str, str]] = {}
    data = storage.read_bytes(path)
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{path}, line {number}"
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{where}: not UTF-8 ({error.reason} at byte {error.start})") \
                from None
        try:
            record = json.loads(line)
        except ValueError as error:
            raise DataError(f"{where}: not JSON ({error})") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        item = record.get("item_id")
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            raise DataError(f"{where}: field 'item_id' is missing or not a non-empty string")
        if item in items:
            raise DataError(f"{where}: item_id {item!r} appears twice")
        texts = {}
        for view in views:
            value = record.get(view, "")
            if not isinstance(value, str):
                raise DataError(f"{where}: field {view!r} of item {item!r} must be a string, "
                                f"got {type(value).__name__}")
            texts[view] = clean_text(value)
        if not any(texts.values()):
            raise DataError(f"{where}: item {item!r} has no text in any view {views}")
        unknown = sorted(set(record) - set(views) - {"item_id"})
        if unknown:
            raise DataError(f"{where}: fields {unknown} are not views of the codes ({views})")
        items[item] = texts
    if not items:
        raise DataError(f"{path}: no items")
    return items


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
    added. Returns a summary (versions, counts, seconds).

    Raises:
      DataError: a bad item file (nothing written).
      ValueError: an export this cannot extend (no training run recorded, or ids mapped by a
        tf.Transform graph).
    """
    import tensorflow as tf

    from tf_ccfrec.codes import artifact as artifact_lib, encode
    from tf_ccfrec.data import tfrecords
    from tf_ccfrec.export import saved_model
    from tf_ccfrec.export.serving_module import RetrievalModule
    from tf_ccfrec.layers.code_embedding import codes_to_tokens
    from tf_ccfrec.training import restore

    started = time.time()
    version, path = newest_version(base, name)
    info = storage.read_json(storage.join(path, saved_model.EXPORT_INFO))
    run_dir = info.get("run")
    if not run_dir or not storage.exists(storage.join(run_dir, "config.json")):
        raise ValueError(f"{path}: the export records no training run this can read "
                         f"({run_dir!r}); export it with `ccfrec export --model-dir RUN`")
    if info.get("model") != "ccfrec":
        raise ValueError(f"{path}: a {info.get('model')} export; only CCFRec (no item-id "
                         "table) serves items it was not trained on")
    served = saved_model.load(path)
    if getattr(served, "id_lookup", None) is not None:
        raise ValueError(f"{path}: item ids are mapped by a tf.Transform graph, whose "
                         "vocabulary cannot grow here")
    model, run = restore.load_run(run_dir)
    artifact = artifact_lib.reorder(artifact_lib.load(run["codes"]), run["item_ids"])
    texts = read_item_file(items_path, artifact.views, format_name)

    ids = [x.decode() for x in served.item_ids.numpy()[1:]]
    table = served.item_table.numpy()
    history = served.history_table.numpy() if model.config.history_vector != "paper" else None
    popularity = np.concatenate([[0], np.rint(np.expm1(served.log_popularity.numpy()))])
    _, catalog_texts = tfrecords.read_catalog(run["prepared"], artifact.views)
    position = {item: i for i, item in enumerate(ids)}
    changed = [i for i in texts if i in position and catalog_texts.get(i) != texts[i]]
    added = [i for i in texts if i not in position]
    if not changed and not added:
        raise ValueError(f"{items_path}: every item is in version {version} with the same "
                         "texts; no version written")
    coded = encode.encode_texts(artifact, changed + added, texts, catalog_texts,
                                encoder_dir=encoder_dir, cache_dir=cache_dir)
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
    for k, item in enumerate(changed):
        table[position[item] + 1] = rows[k]
        if history is not None:
            history[position[item] + 1] = history_rows[k]
    new_rows = rows[len(changed):]
    table = np.concatenate([table, new_rows])
    if history is not None:
        history = np.concatenate([history, history_rows[len(changed):]])
    popularity = np.concatenate([popularity, np.zeros(len(added))]).astype(np.int64)
    all_ids = ids + added
    module = RetrievalModule(model.encoder, table, all_ids, popularity, model.config.temperature,
                             model.config.max_history, int(info["top_k"]),
                             sampled_negatives=run["train_config"]["sampled_negatives"],
                             seed=run["train_config"]["seed"], history_vectors=history)
    output = storage.join(base, name, str(version + 1))
    saved_model.write_module(module, all_ids, output, bool(info.get("scann")), info={
        **info, "from_version": version, "added_items": len(added),
        "reencoded_items": len(changed),
        "catalog_added_from": storage.absolute(items_path)})
    return {"version": version + 1, "from_version": version, "path": storage.absolute(output),
            "items": len(all_ids), "added": len(added), "reencoded": len(changed),
            "unchanged": len(texts) - len(added) - len(changed),
            "embedded_texts": coded["embedded"], "cached_texts": coded["cached"],
            "seconds": round(time.time() - started, 1)}
