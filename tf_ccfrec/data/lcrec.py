"""Reader for the LC-Rec format: `<D>.inter.json` and `<D>.item.json`.

`<D>.inter.json` is {"<user_idx>": [item_idx, ...]} (0-based integers, oldest first);
`<D>.item.json` is {"<item_idx>": {"title": ..., "description": ..., ...}} with string fields,
any of which may be empty or absent.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from tf_ccfrec import storage
from tf_ccfrec.data.dataset import SequenceDataset
from tf_ccfrec.data.errors import DataError, ErrorPolicy
from tf_ccfrec.data.io import order_views, read_json_object
from tf_ccfrec.data.text import clean_text


def find_files(directory: str) -> tuple:
    """Returns (dataset name, inter path, item path) found by name in `directory`."""
    inters = storage.glob(os.path.join(directory, "*.inter.json"))
    if len(inters) != 1:
        found = ", ".join(os.path.basename(p) for p in inters) or "none"
        raise DataError(f"{directory}: expected exactly one <D>.inter.json file, found {found}")
    name = os.path.basename(inters[0])[: -len(".inter.json")]
    item_path = os.path.join(directory, f"{name}.item.json")
    if not storage.isfile(item_path):
        raise DataError(f"{directory}: {name}.inter.json has no matching {name}.item.json")
    return name, inters[0], item_path


def read_item_json(path: str, policy: ErrorPolicy, views: Optional[Sequence[str]] = None,
                   key_of=lambda key: key) -> tuple:
    """Parses an LC-Rec item file.

    Args:
      path: the `<D>.item.json` file.
      policy: where problems go.
      views: text fields to keep; default all string fields that occur.
      key_of: maps the file's key to the item id (the P5 join shifts it).

    Returns:
      ({item id: {view: cleaned text}}, the views).
    """
    raw, duplicates = read_json_object(path)
    for key in duplicates:
        policy.report("duplicate_item", f"{path}: item {key!r} appears more than once")
    rows = {}
    for key, row in raw.items():
        if key in duplicates:
            continue
        if not isinstance(row, dict):
            policy.report("bad_item", f"{path}: item {key!r}: expected an object, "
                                      f"got {type(row).__name__}")
            continue
        bad = [f for f, v in row.items()
               if not (v is None or isinstance(v, str)
                       or (isinstance(v, list) and all(isinstance(x, str) for x in v)))]
        if bad:
            policy.report("bad_item", f"{path}: item {key!r}, field {bad[0]!r}: expected a "
                                      f"string, got {type(row[bad[0]]).__name__}")
            continue
        rows[key] = row
    if views is None:
        views = order_views({f for row in rows.values() for f in row})
    items = {key_of(key): {v: clean_text(row.get(v)) for v in views} for key, row in rows.items()}
    return items, list(views)


def parse_sequences(raw: Dict[str, Any], path: str, items: Dict[str, Any],
                    policy: ErrorPolicy) -> Dict[str, List[str]]:
    """{"<user_idx>": [item_idx, ...]} -> {user id: [item id, ...]}; checks ids exist."""
    sequences = {}
    for user, seq in raw.items():
        if not isinstance(seq, list):
            policy.report("bad_sequence", f"{path}: user {user!r}: expected a list of item ids, "
                                          f"got {type(seq).__name__}")
            continue
        ids = []
        for position, item in enumerate(seq):
            if isinstance(item, bool) or not isinstance(item, int):
                policy.report("bad_item_id", f"{path}: user {user!r}, position {position}: item "
                                             f"id must be an integer, got {item!r}")
            elif str(item) not in items:
                policy.report("unknown_item", f"{path}: user {user!r}, position {position}: item "
                                              f"{item} is not in the item catalog")
            else:
                ids.append(str(item))
        if not ids:
            policy.report("empty_sequence", f"{path}: user {user!r}: empty sequence")
            continue
        sequences[str(user)] = ids
    return sequences


def read(directory: str, views: Optional[Sequence[str]] = None,
         on_error: str = "raise") -> SequenceDataset:
    """Reads an LC-Rec dataset directory (e.g. `data/office`)."""
    policy = ErrorPolicy(on_error)
    name, inter_path, item_path = find_files(directory)
    items, views = read_item_json(item_path, policy, views)
    raw, duplicates = read_json_object(inter_path)
    for user in duplicates:
        policy.report("duplicate_user", f"{inter_path}: user {user!r} appears more than once")
        raw.pop(user, None)
    sequences = parse_sequences(raw, inter_path, items, policy)
    return SequenceDataset(name=name, sequences=sequences, items=items, views=views,
                           source=storage.absolute(directory), problems=policy.summary())
