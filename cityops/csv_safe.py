"""CSV cells a spreadsheet will not run: formula injection neutralised (OWASP "CSV Injection").

Excel, LibreOffice and Google Sheets treat a cell starting with `=`, `+`, `-`, `@` (and tab or
carriage return, which they skip before one) as a formula: a road name `=HYPERLINK(...)` in an
open-data export runs on the reader's machine. Such a text cell gets a leading `'`, which the
spreadsheets show as text. Leading spaces and the full-width forms (`＝`, `＋`, `－`, `＠`) are
caught too; a plain number written as text ("-2.5") is left as it is. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(cell: str) -> str:
    """The cell, with a leading `'` when a spreadsheet would read it as a formula."""
    stripped = cell.lstrip(" ")
    if not stripped or stripped[0] not in TRIGGERS or _NUMBER.fullmatch(stripped):
        return cell
    return "'" + cell


def safe_cell(value: Any) -> Any:
    """Text neutralised, None as an empty cell, anything else (numbers, dates) unchanged."""
    if value is None:
        return ""
    return neutralise(value) if isinstance(value, str) else value


def safe_row(row: Mapping[str, Any], columns: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {k: safe_cell(row.get(k)) for k in columns}
