"""Reader for RecBole atomic files: `<D>.inter` (user_id, item_id, [rating], [timestamp]) and
`<D>.item`, tab-separated with typed headers `name:type` (token, token_seq, float, float_seq).

Sequences are each user's interactions ordered by timestamp (file order among equal timestamps,
and file order when there is no timestamp column).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

from tf_ccfrec import storage
from tf_ccfrec.data.dataset import SequenceDataset
from tf_ccfrec.data.errors import DataError, ErrorPolicy
from tf_ccfrec.data.io import delimited_records
from tf_ccfrec.data.text import clean_text, parse_token_seq

TYPES = ("token", "token_seq", "float", "float_seq")


@dataclasses.dataclass
class AtomicTable:
    """A parsed atomic file: typed columns and rows keyed by the first column's value."""

    path: str
    fields: List[Tuple[str, str]]  # (name, type), the key column first
    rows: Dict[str, dict]          # key -> {name: str | list[str] | float | list[float]}

    @property
    def text_fields(self) -> List[str]:
        return [n for n, t in self.fields[1:] if t in ("token", "token_seq")]

    def text_rows(self, views: Sequence[str]) -> Dict[str, Dict[str, str]]:
        missing = [v for v in views if v not in dict(self.fields)]
        if missing:
            raise DataError(f"{self.path}: no column {missing[0]!r} for a text view "
                            f"(columns: {', '.join(n for n, _ in self.fields)})")
        return {key: {v: clean_text(row.get(v)) for v in views} for key, row in self.rows.items()}

    def numeric_rows(self) -> Dict[str, Dict[str, float]]:
        names = [n for n, t in self.fields[1:] if t == "float"]
        return {key: {n: row[n] for n in names if row.get(n) is not None}
                for key, row in self.rows.items()}


def parse_header(names: List[str], path: str) -> List[Tuple[str, str]]:
    fields = []
    for column, spec in enumerate(names, 1):
        name, sep, kind = spec.strip().partition(":")
        if not sep or kind not in TYPES or not name:
            raise DataError(f"{path}:1: column {column} header {spec!r} is not name:type with "
                            f"type one of {', '.join(TYPES)}")
        fields.append((name, kind))
    return fields


def _value(text: str, kind: str):
    if kind == "token":
        return text
    if kind == "token_seq":
        return parse_token_seq(text)
    if kind == "float":
        return float(text) if text.strip() else None
    return [float(x) for x in text.split()]


def read_rows(path: str, policy: ErrorPolicy) -> Tuple[List[Tuple[str, str]], List[tuple]]:
    """(typed header fields, [(line, {name: typed value})]) of an atomic file."""
    records = delimited_records(path, policy, "\t")
    try:
        _, header = next(records)
    except StopIteration:
        raise DataError(f"{path}: empty file, expected a name:type header") from None
    fields = parse_header(header, path)
    rows = []
    for number, values in records:
        if not values or values == [""]:
            continue
        if len(values) != len(fields):
            policy.report("bad_line", f"{path}:{number}: {len(values)} columns, the header has "
                                      f"{len(fields)}")
            continue
        row = {}
        try:
            for (name, kind), text in zip(fields, values):
                row[name] = _value(text, kind)
        except ValueError:
            policy.report("bad_line", f"{path}:{number}: field {name!r}: {text!r} is not a {kind}")
            continue
        rows.append((number, row))
    return fields, rows


def read_atomic(path: str, policy: ErrorPolicy) -> AtomicTable:
    """Parses an atomic file; rows are keyed by the first column. Duplicate keys are problems."""
    fields, typed_rows = read_rows(path, policy)
    key_name = fields[0][0]
    rows: Dict[str, dict] = {}
    for number, row in typed_rows:
        key = row[key_name]
        if key in rows:
            policy.report("duplicate_row", f"{path}:{number}: {key_name} {key!r} appears again")
            continue
        rows[key] = row
    return AtomicTable(path=path, fields=fields, rows=rows)


def _find(directory: str, suffix: str) -> str:
    found = storage.glob(os.path.join(directory, f"*{suffix}"))
    if len(found) != 1:
        raise DataError(f"{directory}: expected exactly one *{suffix} file, found "
                        f"{', '.join(map(os.path.basename, found)) or 'none'}")
    return found[0]


def read(directory: str, views: Optional[Sequence[str]] = None,
         on_error: str = "raise") -> SequenceDataset:
    """Reads a RecBole dataset directory holding `<D>.inter` and `<D>.item`."""
    policy = ErrorPolicy(on_error)
    inter_path, item_path = _find(directory, ".inter"), _find(directory, ".item")
    table = read_atomic(item_path, policy)
    views = list(views) if views is not None else table.text_fields
    items = table.text_rows(views)

    inter = read_atomic_interactions(inter_path, policy)
    by_user: Dict[str, List[Tuple[float, int, str]]] = {}
    for order, (number, user, item, timestamp) in enumerate(inter):
        if item not in items:
            policy.report("unknown_item", f"{inter_path}:{number}: item {item!r} is not in "
                                          f"{os.path.basename(item_path)}")
            continue
        by_user.setdefault(user, []).append((timestamp, order, item))
    sequences = {user: [item for _, _, item in sorted(events)] for user, events in by_user.items()}
    name = os.path.basename(inter_path)[: -len(".inter")]
    return SequenceDataset(name=name, sequences=sequences, items=items, views=views,
                           source=storage.absolute(directory), numeric=table.numeric_rows(),
                           problems=policy.summary())


def read_atomic_interactions(path: str, policy: ErrorPolicy):
    """(line, user, item, timestamp) of a `.inter` file; timestamp 0.0 when there is none."""
    fields, rows = read_rows(path, policy)
    names = [n for n, _ in fields]
    for required in ("user_id", "item_id"):
        if required not in names:
            raise DataError(f"{path}:1: no {required} column (columns: {', '.join(names)})")
    return [(number, row["user_id"], row["item_id"], row.get("timestamp") or 0.0)
            for number, row in rows]
