"""The live page's files (``exporter/web/``), served from the package as they are.

No build step and no CDN: an HTML shell, one hand-written script that fetches
``/api/v1/status`` and draws tables and SVG charts with DOM calls (never ``innerHTML``, so a
label value is always text), a stylesheet and an icon. They are read once, when the server is
built, and served with an ETag, so a browser that has them asks with ``If-None-Match`` and gets
a 304. They are read from the package's directory: ``importlib.resources`` would also read
them from a zipped package, which no install of this package makes (pip installs a directory),
and loading it cost every start ~1.9 ms of CPU (``importlib.readers``, ``zipfile``).

The page carries its own Content-Security-Policy: scripts, styles and fetches from this origin
only, nothing inline, no frames. Even a label value that got past escaping could not run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

# path → (file in exporter/web, content type)
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
    "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    def headers(self) -> dict[str, str]:
        headers = {
            "ETag": self.etag,
            "Cache-Control": "no-cache",  # revalidate: a new version is seen at once
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if self.content_type.startswith("text/html"):
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return headers


def load_assets() -> dict[str, Asset]:
    """Every file of the page, by the path it is served at."""
    web = Path(__file__).with_name("web")
    assets = {}
    for path, (name, content_type) in FILES.items():
        body = web.joinpath(name).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        assets[path] = Asset(body, content_type, etag)
    return assets


def not_modified(asset: Asset, if_none_match: str | None) -> bool:
    """Whether the browser's copy is current (``If-None-Match`` lists this ETag, or ``*``)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return asset.etag in tags or "*" in tags
