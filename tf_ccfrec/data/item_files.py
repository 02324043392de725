"""Item files: the items a catalog adds (`ccfrec catalog add --items`, the pipeline's catalog
spans), read whole and checked: JSON Lines (one object per line with "item_id" and one string
per text view), an LC-Rec `<D>.item.json`, or an Amazon Reviews 2023 `meta_*.jsonl[.gz]`. Texts
are cleaned as the catalog's were (`tf_ccfrec.data.text.clean_text`)."""

from __future__ import annotations

import json
from typing import Dict, List

from tf_ccfrec import storage
from tf_ccfrec.data.errors import DataError
from tf_ccfrec.data.text import clean_text

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
