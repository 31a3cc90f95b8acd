"""The playground: a page under the mount that runs its agents in a browser (``Settings.playground``).

Rules this module keeps:

* The service routes ``{mount}/playground`` only when ``Settings.playground`` is on; off, the path is
  a 404 like any unknown path. The page holds no data, so like ``/ping`` it is served without the
  ``authorize`` hook: every request the page makes goes through the hook, with the caller's cookies
  or the token typed into the page.
* The assets ship in the package (``acp_adapters/playground/``: ``index.html``, ``app.js``,
  ``app.css``), read on first use and kept; no CDN, no build step, nothing read at import time.
* Every answer carries a strict Content-Security-Policy: the page's own script and style only, requests
  to its own origin only, images from ``data:``/``blob:`` (an agent's image parts), no frames, no
  form posts, no ``<base>``. The script renders agent output as text, never as HTML.
* The page is a client of the mount's public ACP API, by relative URLs: owner scoping, authorization
  and limits apply to it as to any other client, in every framework.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from .errors import NotFoundError
from .http import Headers, Response
from .responses import shown

__all__ = ["CONTENT_SECURITY_POLICY", "playground_response"]

#: The policy of the page and its assets.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_ASSETS = {
    "": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
}
_HEADERS: Headers = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
]


@cache
def _asset(filename: str) -> bytes:
    return (files("acp_adapters") / "playground" / filename).read_bytes()


def playground_response(path: str, name: str) -> Response:
    """The page (``name`` empty) or one of its assets; ``path`` is the request's path under the mount.

    ``/playground/`` is redirected to ``/playground``: the page names its assets and the API by
    relative URLs, which resolve from the path without the slash.
    """
    if not name and path.endswith("/"):
        return Response(308, [("location", "../playground"), *_HEADERS], b"")
    asset = _ASSETS.get(name)
    if asset is None:
        raise NotFoundError(f"no such path: {shown('/playground/' + name)}")
    filename, content_type = asset
    return Response(200, [("content-type", content_type), *_HEADERS], _asset(filename))
