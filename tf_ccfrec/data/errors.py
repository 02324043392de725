"""Errors in input data, and the policy for them: fail (default) or skip and count."""

from __future__ import annotations

import collections
from typing import Dict, List


class DataError(ValueError):
    """Input data is malformed. The message names the file and the line, key or field."""


class ErrorPolicy:
    """Collects problems found while reading.

    With on_error="raise" (the default) the first problem raises DataError. With "skip", the bad
    line, row or id is dropped, and the problem is counted by kind; `summary()` reports the counts
    and the first few messages.
    """

    MODES = ("raise", "skip")

    def __init__(self, on_error: str = "raise", keep_messages: int = 20):
        if on_error not in self.MODES:
            raise ValueError(f"on_error must be one of {self.MODES}, got {on_error!r}")
        self.on_error = on_error
        self.counts: Dict[str, int] = collections.Counter()
        self.messages: List[str] = []
        self._keep = keep_messages

    def report(self, kind: str, message: str) -> None:
        """Raises DataError(message), or counts it under `kind` when skipping."""
        if self.on_error == "raise":
            raise DataError(message)
        self.counts[kind] += 1
        if len(self.messages) < self._keep:
            self.messages.append(message)

    def note(self, kind: str, message: str) -> None:
        """Counts a tolerated irregularity (never raises), e.g. an item without any text."""
        self.counts[kind] += 1
        if len(self.messages) < self._keep:
            self.messages.append(message)

    def summary(self) -> Dict[str, object]:
        return {"on_error": self.on_error, "skipped": dict(sorted(self.counts.items())),
                "examples": list(self.messages)}
