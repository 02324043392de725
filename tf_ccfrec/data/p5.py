"""Reader for the P5 format: `<d>_sequential_data.txt` + `<d>_datamaps.json`, with item text joined
from a RecBole atomic item file (`*.item`, keyed by raw id: Amazon Beauty) or an LC-Rec item JSON
(`*.item.json`, keyed by P5 id - 1: Yelp).

`<d>_sequential_data.txt` has one line per user, `user_id item_id item_id ...`, 1-based integers,
oldest first; `<d>_datamaps.json` maps them to raw ids (`id2user`, `id2item`). Users and items are
identified by their raw ids (ASIN, Yelp business id) in the normalized form.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

from tf_ccfrec import storage
from tf_ccfrec.data import lcrec, recbole
from tf_ccfrec.data.dataset import SequenceDataset
from tf_ccfrec.data.errors import DataError, ErrorPolicy
from tf_ccfrec.data.io import SPEC_VIEWS, read_json_object, text_lines

# An LC-Rec item JSON is keyed by the 0-based index; P5 ids are 1-based.
LCREC_ID_SHIFT = 1


def _one(directory: str, pattern: str, what: str) -> Optional[str]:
    found = storage.glob(os.path.join(directory, pattern))
    if len(found) > 1:
        raise DataError(f"{directory}: more than one {what} ({', '.join(map(os.path.basename, found))})")
    return found[0] if found else None


def _id_map(datamaps: dict, key: str, path: str) -> Dict[str, str]:
    mapping = datamaps.get(key)
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise DataError(f"{path}: field {key!r} must be an object of strings")
    return mapping


def parse_sequence_line(where: str, line: str, id2user: Dict[str, str],
                        id2item: Dict[str, str],
                        policy: ErrorPolicy) -> Optional[Tuple[str, List[str]]]:
    """One line of `<d>_sequential_data.txt` -> (raw user id, [raw item id, ...]), or None for
    a blank or skipped line; `where` ("path:line") starts every message."""
    fields = line.split()
    if not fields:
        return None
    user = fields[0]
    if not all(f.isdigit() for f in fields):
        bad = next(f for f in fields if not f.isdigit())
        policy.report("bad_line", f"{where}: {bad!r} is not an integer id")
        return None
    if user not in id2user:
        policy.report("unknown_user", f"{where}: user {user} is not in id2user")
        return None
    items = []
    for item in fields[1:]:
        if item not in id2item:
            policy.report("unknown_item", f"{where}: item {item} is not in id2item")
        else:
            items.append(id2item[item])
    if not items:
        policy.report("empty_sequence", f"{where}: user {user} has no items")
        return None
    return id2user[user], items


def read_sequences(path: str, id2user: Dict[str, str], id2item: Dict[str, str],
                   policy: ErrorPolicy) -> Dict[str, List[str]]:
    """Parses `<d>_sequential_data.txt` into {raw user id: [raw item id, ...]}."""
    sequences: Dict[str, List[str]] = {}
    for number, line in text_lines(path, policy):
        parsed = parse_sequence_line(f"{path}:{number}", line, id2user, id2item, policy)
        if parsed is None:
            continue
        raw_user, items = parsed
        if raw_user in sequences:
            policy.report("duplicate_user", f"{path}:{number}: user {line.split()[0]} appears "
                                            f"again")
            continue
        sequences[raw_user] = items
    return sequences


def locate(directory: str) -> Tuple[str, str, str]:
    """(dataset name, `<d>_sequential_data.txt`, `<d>_datamaps.json`) in `directory`."""
    seq_path = _one(directory, "*_sequential_data.txt", "*_sequential_data.txt")
    if seq_path is None:
        raise DataError(f"{directory}: no *_sequential_data.txt file")
    name = os.path.basename(seq_path)[: -len("_sequential_data.txt")]
    maps_path = os.path.join(directory, f"{name}_datamaps.json")
    if not storage.isfile(maps_path):
        raise DataError(f"{directory}: {os.path.basename(seq_path)} has no matching "
                        f"{name}_datamaps.json")
    return name, seq_path, maps_path


def read_id_maps(maps_path: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(id2user, id2item) of a `<d>_datamaps.json`."""
    datamaps, _ = read_json_object(maps_path)
    return _id_map(datamaps, "id2user", maps_path), _id_map(datamaps, "id2item", maps_path)


def read_catalog(directory: str, id2item: Dict[str, str], views: Optional[Sequence[str]],
                 policy: ErrorPolicy, sequence_file: str = "the *_sequential_data.txt"):
    """The items of `id2item` in P5 id order with their text: ({raw id: {view: text}}, views,
    {raw id: numeric fields}), from the RecBole *.item or the LC-Rec *.item.json beside."""
    recbole_item = _one(directory, "*.item", "RecBole .item file")
    lcrec_item = _one(directory, "*.item.json", "LC-Rec .item.json file")
    if recbole_item and lcrec_item:
        raise DataError(f"{directory}: both {os.path.basename(recbole_item)} and "
                        f"{os.path.basename(lcrec_item)} could give item text; keep one")
    if recbole_item:
        table = recbole.read_atomic(recbole_item, policy)
        views = list(views) if views is not None else [
            v for v in SPEC_VIEWS if v in table.text_fields]
        by_raw = table.text_rows(views)
        numeric_by_raw = table.numeric_rows()
        text_path = recbole_item
    elif lcrec_item:
        p5_of_key = {str(int(p) - LCREC_ID_SHIFT): raw for p, raw in id2item.items()}
        by_raw, views = lcrec.read_item_json(
            lcrec_item, policy, views, key_of=lambda key: p5_of_key.get(key, "\0" + key))
        numeric_by_raw = {}
        text_path = lcrec_item
    else:
        raise DataError(f"{directory}: no item text: expected a RecBole *.item or an LC-Rec "
                        f"*.item.json file beside {sequence_file}")
    items = {}
    for p5_id, raw in sorted(id2item.items(), key=lambda kv: int(kv[0])):
        if raw in by_raw:
            items[raw] = by_raw[raw]
        else:
            policy.note("missing_text", f"{text_path}: no row for item {raw} (P5 id {p5_id})")
            items[raw] = {v: "" for v in views}
    numeric = {raw: numeric_by_raw[raw] for raw in items if raw in numeric_by_raw}
    return items, list(views), numeric


def read(directory: str, views: Optional[Sequence[str]] = None,
         on_error: str = "raise") -> SequenceDataset:
    """Reads a P5 dataset directory (e.g. `../shared/data/beauty`, `../shared/data/yelp`)."""
    policy = ErrorPolicy(on_error)
    name, seq_path, maps_path = locate(directory)
    id2user, id2item = read_id_maps(maps_path)
    items, views, numeric = read_catalog(directory, id2item, views, policy,
                                         os.path.basename(seq_path))
    sequences = read_sequences(seq_path, id2user, id2item, policy)
    return SequenceDataset(name=name, sequences=sequences, items=items, views=views,
                           source=storage.absolute(directory), numeric=numeric,
                           problems=policy.summary())
