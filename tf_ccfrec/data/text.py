"""Item text cleaning, as the CCFRec authors did it (ccfrec.md §1)."""

from __future__ import annotations

import ast
import html
import re
from typing import Any, List

_TAG = re.compile(r"</?\w+[^>]*>")
_STRAY = re.compile(r"[\"\n\r\t]+")
_SPACE = re.compile(r"\s+")


def clean_text(value: Any) -> str:
    """HTML-unescapes, strips tags, drops double quotes and newlines, collapses whitespace.

    Lists are cleaned element by element and joined with spaces; None is "".
    """
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(part for part in (clean_text(v) for v in value) if part)
    text = html.unescape(str(value))
    text = _TAG.sub(" ", text)
    text = _STRAY.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def parse_token_seq(value: str) -> List[str]:
    """A RecBole token_seq field: space-separated tokens, or a quoted list such as
    `'Beauty', 'Makeup', 'Face'` (as in the Amazon RecBole item files)."""
    stripped = value.strip()
    if stripped[:1] in ("'", '"'):
        try:
            parsed = ast.literal_eval("[" + stripped + "]")
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return stripped.split()
