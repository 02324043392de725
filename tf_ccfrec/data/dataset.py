"""The normalized form every reader produces."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional


@dataclasses.dataclass
class SequenceDataset:
    """Per-user chronological item sequences and the item catalog they refer to.

    Attributes:
      name: a short dataset name, e.g. "Office".
      sequences: user id -> item ids, oldest first. Ids are strings whatever the source format.
      items: item id -> {view name: cleaned text}; every item has every view ("" when absent).
      views: the text view names, in order.
      source: the directory the dataset was read from.
      numeric: item id -> {field: value} for numeric catalog fields (e.g. price), when present.
      splits: for datasets distributed with an official split (Amazon Reviews 2023): user id ->
        "valid"/"test" target item ids, {"valid": {user: item}, "test": {user: item}}; None for
        leave-one-out.
      problems: what the reader skipped under on_error="skip" (ErrorPolicy.summary()).
    """

    name: str
    sequences: Dict[str, List[str]]
    items: Dict[str, Dict[str, str]]
    views: List[str]
    source: str
    numeric: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    splits: Optional[Dict[str, Dict[str, str]]] = None
    problems: Dict[str, object] = dataclasses.field(default_factory=dict)
