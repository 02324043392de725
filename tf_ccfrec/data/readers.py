"""Dataset readers by format name."""

from __future__ import annotations

from tf_ccfrec.data import lcrec
from tf_ccfrec.data.dataset import DataError, SequenceDataset

READERS = {"lcrec": lcrec.read}
FORMATS = tuple(READERS)


def read(format_name: str, directory: str) -> SequenceDataset:
    """Reads the dataset in `directory`, laid out as distributed in format `format_name`."""
    if format_name not in READERS:
        raise DataError(f"unknown format {format_name!r}; known: {', '.join(FORMATS)}")
    return READERS[format_name](directory)
