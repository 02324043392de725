"""Dataset readers by format name."""

from __future__ import annotations

from typing import Optional, Sequence

from tf_ccfrec.data import amazon2023, lcrec, p5, recbole
from tf_ccfrec.data.dataset import SequenceDataset
from tf_ccfrec.data.errors import DataError

READERS = {"p5": p5.read, "lcrec": lcrec.read, "recbole": recbole.read,
           "amazon2023": amazon2023.read}
FORMATS = tuple(READERS)


def read(format_name: str, directory: str, views: Optional[Sequence[str]] = None,
         on_error: str = "raise") -> SequenceDataset:
    """Reads the dataset in `directory`, laid out as distributed in format `format_name`.

    Args:
      format_name: one of FORMATS.
      directory: the dataset's directory; each reader finds its files by name.
      views: text views to keep; default the text fields the catalog has.
      on_error: "raise" (default) stops at the first problem; "skip" drops the bad line, row or
        id and counts it in `SequenceDataset.problems`.
    """
    if format_name not in READERS:
        raise DataError(f"unknown format {format_name!r}; known: {', '.join(FORMATS)}")
    return READERS[format_name](directory, views=views, on_error=on_error)
