"""Reader for the Amazon Reviews 2023 benchmark files, keeping the official split as given.

    {Category}.train.csv, {Category}.valid.csv, {Category}.test.csv
        user_id,parent_asin,rating,timestamp,history   (history: space-separated earlier items)
    meta_{Category}.jsonl
        one JSON object per line: parent_asin, title, features [..], description [..],
        categories [..], details {"Brand": ...}, ...

(`benchmark/5core/last_out_w_his/` and `raw/meta_categories/` of the release.) Each file may be
gzipped as the release ships it (`.csv.gz`, `.jsonl.gz`) or plain; on any filesystem
`tf.io.gfile` reads (local, gs://, s3://, ...). A user's sequence is
their train rows by timestamp, then the valid target, then the test target; `splits` records the
valid and test targets so the official split is kept.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

from tf_ccfrec import storage
from tf_ccfrec.data.dataset import SequenceDataset
from tf_ccfrec.data.errors import DataError, ErrorPolicy
from tf_ccfrec.data.io import delimited_records, text_lines
from tf_ccfrec.data.text import clean_text

COLUMNS = ("user_id", "parent_asin", "rating", "timestamp", "history")
SPLITS = ("train", "valid", "test")
DEFAULT_VIEWS = ("title", "brand", "categories", "description", "features")


def _view_value(row: dict, view: str):
    if view == "brand":
        details = row.get("details") if isinstance(row.get("details"), dict) else {}
        return details.get("Brand") or row.get("store") or ""
    return row.get(view)


def read_meta(path: str, views: Sequence[str], policy: ErrorPolicy) -> Dict[str, Dict[str, str]]:
    items: Dict[str, Dict[str, str]] = {}
    for number, line in text_lines(path, policy):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            policy.report("bad_line", f"{path}:{number}: invalid JSON: {e.msg}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("parent_asin"), str):
            policy.report("bad_line", f"{path}:{number}: expected an object with a string "
                                      f"'parent_asin'")
            continue
        key = row["parent_asin"]
        if key in items:
            policy.report("duplicate_row", f"{path}:{number}: parent_asin {key!r} appears again")
            continue
        items[key] = {v: clean_text(_view_value(row, v)) for v in views}
    return items


def read_split(path: str, policy: ErrorPolicy) -> List[dict]:
    rows = []
    records = delimited_records(path, policy, ",")
    try:
        _, names = next(records)
    except StopIteration:
        raise DataError(f"{path}: empty file, expected the header {','.join(COLUMNS)}") from None
    if tuple(names[: len(COLUMNS)]) != COLUMNS:
        raise DataError(f"{path}:1: header {','.join(names)!r}, expected {','.join(COLUMNS)}")
    for number, values in records:
        if not values:
            continue
        if len(values) != len(names):
            policy.report("bad_line", f"{path}:{number}: {len(values)} columns, the header has "
                                      f"{len(names)}")
            continue
        row = dict(zip(names, values))
        try:
            row["timestamp"] = int(float(row["timestamp"]))
        except ValueError:
            policy.report("bad_line", f"{path}:{number}: field 'timestamp': "
                                      f"{row['timestamp']!r} is not a number")
            continue
        row["line"] = number
        rows.append(row)
    return rows


def _one_of(directory: str, name: str) -> str:
    """`<directory>/<name>` or `<name>.gz`, whichever is there (exactly one)."""
    found = [p for p in (os.path.join(directory, name), os.path.join(directory, name + ".gz"))
             if storage.isfile(p)]
    if len(found) != 1:
        raise DataError(f"{directory}: " + (f"missing {name} (or {name}.gz)" if not found else
                                            f"both {name} and {name}.gz; keep one"))
    return found[0]


def read(directory: str, views: Optional[Sequence[str]] = None,
         on_error: str = "raise") -> SequenceDataset:
    """Reads `{Category}.{train,valid,test}.csv` and `meta_{Category}.jsonl` from `directory`."""
    policy = ErrorPolicy(on_error)
    trains = (storage.glob(os.path.join(directory, "*.train.csv"))
              + storage.glob(os.path.join(directory, "*.train.csv.gz")))
    if len(trains) != 1:
        raise DataError(f"{directory}: expected exactly one {{Category}}.train.csv[.gz], found "
                        f"{', '.join(map(os.path.basename, trains)) or 'none'}")
    name = os.path.basename(trains[0])
    category = name[: name.rindex(".train.csv")]
    paths = {s: _one_of(directory, f"{category}.{s}.csv") for s in SPLITS}
    meta_path = _one_of(directory, f"meta_{category}.jsonl")
    views = list(views or DEFAULT_VIEWS)
    items = read_meta(meta_path, views, policy)

    def known(item, path, line):
        if item in items:
            return True
        policy.report("unknown_item", f"{path}:{line}: item {item!r} is not in "
                                      f"{os.path.basename(meta_path)}")
        return False

    train: Dict[str, List[tuple]] = {}
    for row in read_split(paths["train"], policy):
        if known(row["parent_asin"], paths["train"], row["line"]):
            train.setdefault(row["user_id"], []).append((row["timestamp"], row["line"],
                                                         row["parent_asin"]))
    sequences = {u: [i for _, _, i in sorted(events)] for u, events in train.items()}
    splits: Dict[str, Dict[str, str]] = {"valid": {}, "test": {}}
    for split in ("valid", "test"):
        for row in read_split(paths[split], policy):
            user, item = row["user_id"], row["parent_asin"]
            if user in splits[split]:
                policy.report("duplicate_row", f"{paths[split]}:{row['line']}: user {user!r} "
                                               f"appears again")
                continue
            if known(item, paths[split], row["line"]):
                splits[split][user] = item
    for user in set(splits["valid"]) | set(splits["test"]):
        seq = sequences.setdefault(user, [])
        for split in ("valid", "test"):
            if user in splits[split]:
                seq.append(splits[split][user])
    sequences = {u: s for u, s in sequences.items() if s}
    return SequenceDataset(name=category, sequences=sequences, items=items, views=views,
                           source=storage.absolute(directory), splits=splits,
                           problems=policy.summary())
