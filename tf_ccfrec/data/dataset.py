"""The normalized form every reader produces."""

from __future__ import annotations

import dataclasses
from typing import Dict, List


class DataError(ValueError):
    """Input data is malformed. The message names the file and the line, key or field."""


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    """Per-user chronological item sequences and the item catalog they refer to.

    Attributes:
      name: a short dataset name, e.g. "Office".
      sequences: user id -> item ids, oldest first. Ids are strings whatever the source format.
      items: item id -> {view name: text}. Views absent from an item's source row are "".
      views: the text view names, in order.
      source: the directory the dataset was read from.
    """

    name: str
    sequences: Dict[str, List[str]]
    items: Dict[str, Dict[str, str]]
    views: List[str]
    source: str
