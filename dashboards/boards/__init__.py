"""The boards, one module each. `all_boards` builds them for a council's map view."""

from __future__ import annotations

from dashboards.boards import bins, cases, damp, ingest, overview, roads
from dashboards.model import Board, MapView


def all_boards(view: MapView) -> list[Board]:
    return [overview.board(view), damp.board(view), roads.board(view), bins.board(view), cases.board(), ingest.board()]
