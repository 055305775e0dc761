"""Two ASGI guards in front of every route: cross-site unsafe requests and oversized bodies.

CrossSite: a POST, PUT, PATCH or DELETE whose `Sec-Fetch-Site` is not `same-origin` (or
`none`: typed by the user) or whose `Origin` is not this site's own (or an allowed one) is
refused 403 before any route runs: a form on another site cannot sign anyone in, out, or do
anything with their cookie. Clients that send neither header (curl, scripts, devices with a
bearer token or HTTP Basic) are not browsers acting for someone else and pass.

BodyLimit: a body over the limit is 413, judged on Content-Length when there is one and on
the bytes actually sent when there is not (chunked); the routes that need no sign-in (login,
invitations) have a smaller limit than the rest, and a route that takes files (a householder's
report with photos) names its own larger one in `path_limits`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_api.errors import CrossSiteRefused, PayloadTooLarge, as_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]`, lower-cased, default port left out; None for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else "")


def cross_site_reason(method: str, headers: dict[str, str], own_origin: str | None,
                      allowed: frozenset[str]) -> str | None:
    """Why this request is refused as cross-site, or None to let it through. Pure."""
    if method in SAFE_METHODS:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCHES:
        return f"a {method} from another site's page (Sec-Fetch-Site: {fetch_site[:40]})"
    origin = headers.get("origin")
    if origin is not None:
        normal = origin_of(origin)
        if normal is None or (normal != own_origin and normal not in allowed):
            return f"a {method} from another site's page (Origin: {origin[:100]})"
    return None


class CrossSite:
    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(o for o in map(origin_of, allowed_origins) if o)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                       if k in (b"origin", b"sec-fetch-site", b"host")}
            own = origin_of(f"{scope['scheme']}://{headers['host']}") if "host" in headers else None
            reason = cross_site_reason(scope["method"], headers, own, self.allowed)
            if reason is not None:
                await as_response(CrossSiteRefused(f"refused {reason}"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, *, small_limit: int, small_paths: Iterable[str],
                 path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.small_limit = small_limit
        self.small_paths = frozenset(small_paths)
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.small_limit if path in self.small_paths else self.path_limits.get(path, self.limit)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > limit):
            await as_response(PayloadTooLarge(limit))(scope, receive, send)
            return
        # Read the body here (the routes read it whole anyway), so a chunked body that grows
        # past the limit is refused before any route sees it.
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                chunks.append(message)
                break
            size += len(message.get("body", b""))
            if size > limit:
                await as_response(PayloadTooLarge(limit))(scope, receive, send)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)
