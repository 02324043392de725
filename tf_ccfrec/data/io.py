"""Reading input files with errors that name the file and the line or key; through
`tf_ccfrec.storage`, so on any filesystem TensorFlow knows, and `.gz` files decompressed."""

from __future__ import annotations

import csv
import json
from typing import Iterator, List, Tuple

from tf_ccfrec import storage
from tf_ccfrec.data.errors import DataError

# The view order of the CCFRec spec; other text fields follow in name order.
SPEC_VIEWS = ("title", "brand", "categories", "description")


def order_views(names) -> List[str]:
    names = set(names)
    return [v for v in SPEC_VIEWS if v in names] + sorted(names - set(SPEC_VIEWS))


class _Object(dict):
    """A JSON object that remembers which of its keys appeared more than once."""

    duplicates: List[str]


def _object(pairs) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def read_json_object(path: str) -> Tuple[dict, List[str]]:
    """Parses a JSON file whose top-level value must be an object.

    Returns:
      (the object, its keys that appear more than once; json.load would keep the last silently).
    """
    try:
        raw = storage.read_bytes(path)
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte offset {e.start})") from e
    try:
        value = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    if not isinstance(value, dict):
        raise DataError(f"{path}: top-level value must be an object, got {type(value).__name__}")
    return value, list(value.duplicates)


def text_lines(path: str, policy) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without newline) of a UTF-8 text file.

    A line that is not UTF-8 is reported to `policy` (kind "encoding") and skipped.
    """
    with storage.open_binary(path) as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                policy.report("encoding", f"{path}:{number}: not UTF-8 (column {e.start + 1})")
                continue
            yield number, line.rstrip("\r\n")


def delimited_records(path: str, policy, delimiter: str) -> Iterator[Tuple[int, List[str]]]:
    """(first line number, fields) of each record of a delimited text file.

    Quoted fields may hold the delimiter and newlines (as pandas and RecBole read such files).
    Lines that are not UTF-8 are reported to `policy` and skipped.
    """
    current = [0]

    def lines():
        for number, line in text_lines(path, policy):
            current[0] = number
            yield line + "\n"

    reader = csv.reader(lines(), delimiter=delimiter)
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}:{current[0]}: {e}") from e
        yield start, fields
        start = current[0] + 1
