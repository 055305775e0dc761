"""The crew's job page in one response: on a slow connection every request costs a round trip
(2 s on "Slow 3G"), so the page carries its styles, its scripts and the job's JSON inline
instead of asking for them after the HTML arrives.

`bundle(entry)` joins a page script and the modules it imports statically (our own files under
/static, which use only `import {a, b} from "/static/x.js"`, `import * as x from "/static/x.js"`
and `export` before a declaration) into one module script: each module runs in its own
function scope and hands its exports to the modules after it. Dynamic `import()` is left as
it is (the map loads after the page is usable). The Content-Security-Policy allows exactly
these inline texts by their SHA-256 (`csp_hash`), nothing else inline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent.parent / "static"

IMPORT = re.compile(r'^import\s+(?:\{([^}]*)\}|\*\s+as\s+(\w+))\s+from\s+"/static/([\w.-]+\.js)";\s*$', re.M)
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|class|const|let)\s+(\w+)", re.M)


def _order(entry: str, seen: list[str]) -> list[str]:
    """The entry's static imports, depth first, each once, then the entry."""
    for match in IMPORT.finditer((STATIC / entry).read_text(encoding="utf-8")):
        if match.group(3) not in seen:
            _order(match.group(3), seen)
    if entry not in seen:
        seen.append(entry)
    return seen


def _module(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    exports = EXPORT.findall(text)

    def imported(match: re.Match[str]) -> str:
        source = f'modules["{match.group(3)}"]'
        if match.group(2):
            return f"const {match.group(2)} = {source};"
        names = ", ".join(part.strip() for part in match.group(1).split(",") if part.strip())
        return f"const {{ {names} }} = {source};"

    body = EXPORT.sub(lambda m: m.group(0).removeprefix("export").lstrip(), IMPORT.sub(imported, text))
    return f'modules["{name}"] = (() => {{\n{body}\nreturn {{ {", ".join(exports)} }};\n}})();\n'


@cache
def bundle(entry: str) -> str:
    """One module script: `entry` and everything it imports statically from /static."""
    text = "const modules = {};\n" + "".join(_module(name) for name in _order(entry, []))
    if re.search(r"</script|<!--", text, re.I):   # would end the inline script early
        raise ValueError(f"{entry} or a module it imports holds '</script' or '<!--': write it another way")
    return text


@cache
def stylesheet(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """The CSP source allowing exactly this inline script or style."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def json_in_html(text: str) -> str:
    """JSON safe inside <script type="application/json">: no "</script>" or "<!--" can end it early."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
