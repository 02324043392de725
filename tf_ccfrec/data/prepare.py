"""Raw dataset directory -> prepared TFRecords + statistics (`ccfrec data prepare`)."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from tf_ccfrec import storage
from tf_ccfrec.data import filtering, readers, splits, stats, tfrecords


def prepare(format_name: str, input_dir: str, output_dir: str,
            views: Optional[Sequence[str]] = None, max_history: int = 20,
            on_error: str = "raise", k_core: int = 0, overwrite: bool = False,
            cold_fraction: float = 0.0, cold_seed: int = 0) -> Dict[str, Any]:
    """Reads a dataset, splits it leave-one-out and writes examples, catalog and statistics.

    With `cold_fraction` > 0, a seeded fraction of the catalog's items is kept out of every
    training interaction (`splits.make_examples`): cold-start items, listed in
    `<output_dir>/cold_items.txt`, that valid and test targets may still be.

    The output directory appears complete or not at all.

    Returns:
      The statistics written to `<output_dir>/statistics.json`.
    """
    data = readers.read(format_name, input_dir, views=views, on_error=on_error)
    data = filtering.k_core(data, k_core)
    cold = splits.cold_items(list(data.items), cold_fraction, cold_seed) if cold_fraction else []
    examples = splits.make_examples(data, max_history=max_history, cold=cold)
    result = stats.dataset_statistics(data)
    result.update({
        "format_version": tfrecords.FORMAT_VERSION,
        "format": format_name,
        "input": storage.absolute(input_dir),
        "views": list(data.views),
        "numeric_fields": sorted({f for v in data.numeric.values() for f in v}),
        "max_history": max_history,
        "k_core": k_core,
        "split": "official" if data.splits is not None else "leave-one-out",
        "problems": data.problems,
        "cold_items": {"fraction": cold_fraction, "seed": cold_seed, "count": len(cold)},
    })
    with storage.atomic_directory(output_dir, overwrite=overwrite) as staging:
        result["examples"] = tfrecords.write_examples(staging, examples)
        tfrecords.write_catalog(staging, data)
        if cold:
            storage.write_text(os.path.join(staging, COLD_ITEMS_FILE), "\n".join(cold) + "\n")
        storage.write_json(os.path.join(staging, tfrecords.STATISTICS_FILE), result)
    return result


COLD_ITEMS_FILE = "cold_items.txt"


def load_cold_items(prepared_dir: str) -> list:
    """The cold-start items of a prepared dataset ([] without them)."""
    path = os.path.join(prepared_dir, COLD_ITEMS_FILE)
    if not storage.exists(path):
        return []
    return storage.read_bytes(path).decode().split()


def load_statistics(prepared_dir: str) -> Dict[str, Any]:
    from tf_ccfrec.data.errors import DataError

    path = os.path.join(prepared_dir, tfrecords.STATISTICS_FILE)
    if not storage.exists(path):
        raise DataError(f"{prepared_dir}: no {tfrecords.STATISTICS_FILE}; is it the output of "
                        f"`ccfrec data prepare`?")
    if not storage.is_complete(prepared_dir):
        raise DataError(f"{prepared_dir}: no valid {storage.COMPLETE_MARKER} (being written, "
                        f"or left by a failed write); prepare it again")
    return storage.read_json(path)
