"""HTML to PDF through headless Chromium's print-to-PDF (the evidence packs' PDFs).

The page is written to a private temporary folder and printed by `chromium --headless
--print-to-pdf` with a throw-away profile and no header or footer. The pages printed here
load nothing and run nothing: every text is escaped and their Content-Security-Policy
(`default-src 'none'`) refuses any script or fetch (rules.cases.evidence). (Chromium's
`--blink-settings=scriptEnabled=false` would be belt and braces, but headless print-to-PDF
then never writes the file.) Chromium is a system
package (Debian's `chromium`, installed by scripts/system-deps.sh); without it a PDF route
answers 503 naming what is missing, and the CSV and HTML still work. As root (a container)
Chromium's sandbox cannot start, so it runs with --no-sandbox there, and where the setting
CITYOPS_API__PDF_SANDBOX is false (the shipped image: Docker's default seccomp profile blocks
the user namespaces the sandbox needs). At most
`CONCURRENT` prints run at once; one that takes longer than `timeout_s` is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ops_api.errors import ApiError

log = logging.getLogger("ops_api.pdf")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONCURRENT = 2
_slots = asyncio.Semaphore(CONCURRENT)


class PdfUnavailable(ApiError):
    """503: no browser to print with, or the print failed."""

    status = 503
    hint = "install Debian's `chromium` package on the API's host (scripts/system-deps.sh), or use the .csv"


def find_browser() -> str | None:
    """The Chromium binary: the first of BROWSERS on PATH."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def _command(browser: str, page: Path, out: Path, profile: Path, *, sandbox: bool = True) -> list[str]:
    command = [browser, "--headless", "--disable-gpu", "--no-pdf-header-footer", "--disable-extensions",
               "--no-first-run", f"--user-data-dir={profile}",
               f"--print-to-pdf={out}", page.as_uri()]
    if os.geteuid() == 0 or not sandbox:
        command.insert(1, "--no-sandbox")
    return command


async def html_to_pdf(page_html: str, *, timeout_s: float = 60.0, sandbox: bool = True) -> bytes:
    """The page printed to PDF (A4 unless the page's @page says otherwise)."""
    browser = find_browser()
    if browser is None:
        raise PdfUnavailable("the PDF cannot be made here: no Chromium browser is installed on the server "
                             f"(looked for {', '.join(BROWSERS)})")
    async with _slots:
        with tempfile.TemporaryDirectory(prefix="cityops-pdf-") as folder:
            root = Path(folder)
            page, out = root / "page.html", root / "page.pdf"
            page.write_text(page_html, encoding="utf-8")
            process = await asyncio.create_subprocess_exec(
                *_command(browser, page, out, root / "profile", sandbox=sandbox), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            try:
                _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise PdfUnavailable(f"the PDF took longer than {timeout_s:g} s to print",
                                     hint="try again; the .csv has the same entries") from None
            if process.returncode != 0 or not out.exists() or out.stat().st_size == 0:
                log.error("%s exited %s: %s", browser, process.returncode, stderr.decode(errors="replace")[-2000:])
                raise PdfUnavailable(f"the PDF could not be printed ({Path(browser).name} exited "
                                     f"{process.returncode})", hint="try again; the .csv has the same entries")
            return out.read_bytes()
