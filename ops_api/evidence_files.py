"""A case's evidence pack as the files the routes send: the PDF (the pack's page printed by
ops_api.pdf) and the CSV (rules.cases.evidence), both private and never cached."""

from __future__ import annotations

from fastapi import Response

from ops_api.pdf import html_to_pdf
from rules.cases.evidence import CasePack, pack_csv, pack_html

PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
PDF_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/pdf": {}}},
    503: {"description": "no Chromium on the server to print the PDF with (the .csv still works)"}}
CSV_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {"text/csv": {}}}}


def _name(pack: CasePack, extension: str) -> str:
    copy = "householder" if pack.audience == "householder" else "full"
    return f"case-{pack.case_id}-evidence-{copy}.{extension}"


async def pdf_response(pack: CasePack, *, sandbox: bool = True) -> Response:
    return Response(await html_to_pdf(pack_html(pack), sandbox=sandbox), media_type="application/pdf",
                    headers=PRIVATE | {"Content-Disposition": f'attachment; filename="{_name(pack, "pdf")}"'})


def csv_response(pack: CasePack) -> Response:
    return Response(pack_csv(pack), media_type="text/csv; charset=utf-8",
                    headers=PRIVATE | {"Content-Disposition": f'attachment; filename="{_name(pack, "csv")}"'})
