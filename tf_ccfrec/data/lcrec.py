"""Reader for the LC-Rec format: `<D>.inter.json` and `<D>.item.json`.

`<D>.inter.json` is {"<user_idx>": [item_idx, ...]} (0-based integers, oldest first);
`<D>.item.json` is {"<item_idx>": {"title": ..., "description": ..., ...}} with string fields,
any of which may be empty or absent.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Sequence

from tf_ccfrec.data.dataset import DataError, SequenceDataset

DEFAULT_VIEWS = ("title", "brand", "categories", "description")


def find_files(directory: str) -> tuple[str, str, str]:
    """Returns (dataset name, inter path, item path) found by name in `directory`."""
    inters = sorted(glob.glob(os.path.join(directory, "*.inter.json")))
    if len(inters) != 1:
        found = ", ".join(os.path.basename(p) for p in inters) or "none"
        raise DataError(f"{directory}: expected exactly one <D>.inter.json file, found {found}")
    name = os.path.basename(inters[0])[: -len(".inter.json")]
    item_path = os.path.join(directory, f"{name}.item.json")
    if not os.path.exists(item_path):
        raise DataError(f"{directory}: {name}.inter.json has no matching {name}.item.json")
    return name, inters[0], item_path


def _load_json_object(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte offset {e.start})") from e
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    if not isinstance(value, dict):
        raise DataError(f"{path}: top-level value must be an object, got {type(value).__name__}")
    return value


def parse_items(raw: Dict[str, Any], path: str, views: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """{"<item_idx>": {field: str}} -> {item id: {view: text}}; checks types."""
    items = {}
    for key, row in raw.items():
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {key!r}: expected an object, got {type(row).__name__}")
        text = {}
        for view in views:
            value = row.get(view, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise DataError(f"{path}: item {key!r}, field {view!r}: expected a string, "
                                f"got {type(value).__name__}")
            text[view] = value
        items[key] = text
    return items


def parse_sequences(raw: Dict[str, Any], path: str, items: Dict[str, Any]) -> Dict[str, List[str]]:
    """{"<user_idx>": [item_idx, ...]} -> {user id: [item id, ...]}; checks ids exist."""
    sequences = {}
    for user, seq in raw.items():
        if not isinstance(seq, list):
            raise DataError(f"{path}: user {user!r}: expected a list of item ids, "
                            f"got {type(seq).__name__}")
        if not seq:
            raise DataError(f"{path}: user {user!r}: empty sequence")
        ids = []
        for position, item in enumerate(seq):
            if isinstance(item, bool) or not isinstance(item, int):
                raise DataError(f"{path}: user {user!r}, position {position}: item id must be an "
                                f"integer, got {item!r}")
            if str(item) not in items:
                raise DataError(f"{path}: user {user!r}, position {position}: item {item} is not "
                                f"in the item catalog")
            ids.append(str(item))
        sequences[str(user)] = ids
    return sequences


def read(directory: str, views: Sequence[str] = DEFAULT_VIEWS) -> SequenceDataset:
    """Reads an LC-Rec dataset directory (e.g. `data/office`)."""
    name, inter_path, item_path = find_files(directory)
    items = parse_items(_load_json_object(item_path), item_path, views)
    sequences = parse_sequences(_load_json_object(inter_path), inter_path, items)
    return SequenceDataset(name=name, sequences=sequences, items=items, views=list(views),
                           source=os.path.abspath(directory))
