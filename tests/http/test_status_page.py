"""The status page at ``/``: content negotiation, its assets and their security headers."""

from __future__ import annotations

import re

import aiohttp
import orjson
import pytest

from orchestrator import Application
from orchestrator.config import HttpSettings
from orchestrator.http.page import ASSETS
from orchestrator.http.route import Access, public_paths
from orchestrator.http.routes import ROUTES
from tests.http.helpers import CANARY, Serve

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"

HTML_ACCEPTS = {
    "browser": BROWSER,
    "text/html": "text/html",
    "html-preferred": "application/json;q=0.5, text/html",
    "case-and-spaces": " TEXT/HTML ; charset=utf-8",
}
JSON_ACCEPTS = {
    "none": None,
    "curl": "*/*",
    "json": "application/json",
    "text-wildcard": "text/*",
    "json-preferred": "application/json, text/html;q=0.9",
    "html-refused": "text/html;q=0",
    "html-bad-q": "text/html;q=x",
    "text/plain": "text/plain",
}

ASSET_TYPES = {
    "/static/status.css": "text/css; charset=utf-8",
    "/static/status.js": "text/javascript; charset=utf-8",
}


def headers_for(accept: str | None) -> dict[str, str]:
    return {} if accept is None else {"Accept": accept}


def assert_page_headers(resp: aiohttp.ClientResponse) -> None:
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["ETag"].startswith('"')


@pytest.mark.parametrize("accept", list(HTML_ACCEPTS.values()), ids=list(HTML_ACCEPTS))
async def test_html_accept_gets_the_page(
    app: Application, session: aiohttp.ClientSession, accept: str
) -> None:
    """``text/html`` named in Accept (above JSON) gets the page, with CSP and nosniff."""
    async with session.get(f"{app.http_url}/", headers={"Accept": accept}) as resp:
        body = await resp.text()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "Accept" in resp.headers["Vary"]
        assert_page_headers(resp)
    assert body.startswith("<!doctype html>")
    assert '<script src="/static/status.js" defer></script>' in body
    assert '<link rel="stylesheet" href="/static/status.css">' in body


@pytest.mark.parametrize("accept", list(JSON_ACCEPTS.values()), ids=list(JSON_ACCEPTS))
async def test_other_clients_keep_the_json_index(
    app: Application, session: aiohttp.ClientSession, accept: str | None
) -> None:
    """Wildcards, JSON, a refused or outranked ``text/html`` and no Accept get the JSON index."""
    async with session.get(f"{app.http_url}/", headers=headers_for(accept)) as resp:
        body = orjson.loads(await resp.read())
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert resp.headers["Vary"] == "Accept"
        assert "Content-Security-Policy" not in resp.headers
    assert body["name"] == "orchestrator"
    assert "/stats" in body["endpoints"]


@pytest.mark.parametrize("path", ["/", *ASSET_TYPES])
async def test_head_matches_get(
    app: Application, session: aiohttp.ClientSession, path: str
) -> None:
    """HEAD on the page and its assets: same status and headers as GET, no body."""
    html = {"Accept": "text/html"}
    async with session.get(f"{app.http_url}{path}", headers=html) as got:
        await got.read()
    async with session.head(f"{app.http_url}{path}", headers=html) as head:
        assert head.status == got.status == 200
        assert await head.read() == b""
        for name in ("Content-Type", "Content-Length", "ETag", "Content-Security-Policy",
                     "X-Content-Type-Options", "Cache-Control"):  # fmt: skip
            assert head.headers[name] == got.headers[name], name


@pytest.mark.parametrize("path", list(ASSET_TYPES))
async def test_assets_served_with_their_types(
    app: Application, session: aiohttp.ClientSession, path: str
) -> None:
    """The stylesheet and script come with their content types and the page's headers."""
    async with session.get(f"{app.http_url}{path}") as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == ASSET_TYPES[path]
        assert_page_headers(resp)
    assert len(body) > 1000


@pytest.mark.parametrize("path", ["/", *ASSET_TYPES])
async def test_if_none_match_gives_304(
    app: Application, session: aiohttp.ClientSession, path: str
) -> None:
    """A revalidation with the ETag costs a 304 without a body; another ETag gets 200."""
    html = {"Accept": "text/html"}
    async with session.get(f"{app.http_url}{path}", headers=html) as first:
        etag = first.headers["ETag"]
    async with session.get(
        f"{app.http_url}{path}", headers={**html, "If-None-Match": etag}
    ) as again:
        assert again.status == 304
        assert await again.read() == b""
        assert again.headers["ETag"] == etag
    async with session.get(
        f"{app.http_url}{path}", headers={**html, "If-None-Match": '"other"'}
    ) as other:
        assert other.status == 200


async def test_page_is_self_contained(app: Application, session: aiohttp.ClientSession) -> None:
    """No inline script or style, no inline handlers, nothing loaded from another origin."""
    async with session.get(f"{app.http_url}/", headers={"Accept": "text/html"}) as resp:
        html = await resp.text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/status.js" defer>']
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert url.startswith(("/", "#", "data:")), url
        assert not url.startswith("//"), url
    async with session.get(f"{app.http_url}/static/status.css") as css:
        assert "url(" not in await css.text()
    async with session.get(f"{app.http_url}/static/status.js") as js:
        script = await js.text()
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink  # data reaches the DOM as text only


@pytest.mark.parametrize("path", ["/", *ASSET_TYPES])
async def test_page_and_assets_public_with_a_token(serve: Serve, path: str) -> None:
    """With a token configured, the page and its assets load without it; /stats does not."""
    client = await serve(http_token=(CANARY,), rate_limit=None)
    async with client.get(path, headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200
    async with client.get("/stats") as stats:
        assert stats.status == 401


async def test_unknown_static_path_is_not_served(serve: Serve) -> None:
    """Only the two assets exist under /static: anything else is a JSON 404."""
    client = await serve(rate_limit=None)
    async with client.get("/static/../pyproject.toml") as up, client.get("/static/x.js") as x:
        assert (up.status, x.status) == (404, 404)
        assert x.content_type == "application/json"


def test_asset_routes_are_public_by_default() -> None:
    """Every asset route is in the route table and public by default, as the page needs."""
    routes = {r.path: r for r in ROUTES}
    assert set(ASSETS) <= set(routes)
    assert all(routes[path].access is Access.PUBLIC for path in ASSETS)
    assert set(ASSETS) <= public_paths(ROUTES, HttpSettings())
