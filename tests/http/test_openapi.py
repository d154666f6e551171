"""The OpenAPI document: the route table's twin, served at /openapi.json, in docs/openapi.yaml."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import orjson
import pytest
import yaml

from orchestrator import Application, FakeClock
from orchestrator.config import HttpSettings
from orchestrator.http import create_app, views
from orchestrator.http.keys import DOCUMENT
from orchestrator.http.openapi import COMPONENTS, REFERENCE, SECTIONS, Document
from orchestrator.http.openapi import spec as spec_of
from orchestrator.http.openapi.__main__ import main
from orchestrator.http.route import CATCH_ALL, Access, Route, public_paths
from orchestrator.http.routes import ROUTES
from tests.fakes import FakeFactory, make_app
from tests.http.helpers import CANARY, Serve

DOCS_YAML = Path(__file__).parent.parent.parent / "docs" / "openapi.yaml"
SETTINGS = {
    "defaults": HttpSettings(),
    "token": HttpSettings(http_token=(CANARY,)),
    "token-private-index": HttpSettings(http_token=(CANARY,), http_public_paths=("/live",)),
    "no-rate-limit": HttpSettings(rate_limit=None),
    "everything-limited": HttpSettings(http_token=(CANARY,), rate_limit_exempt_paths=()),
}
HttpCase = pytest.mark.parametrize("http", SETTINGS.values(), ids=SETTINGS.keys())


ADMIN_PATHS = [r.path for r in ROUTES if r.access is Access.ADMIN]


def spec(http: HttpSettings) -> dict[str, Any]:
    """The document of the route table for ``http``."""
    return spec_of(http, ROUTES)


def registered(http: HttpSettings) -> set[tuple[str, str]]:
    """(method, canonical path) of every route ``create_app`` registers, but the catch-all."""
    app = create_app(Application(), http)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical != CATCH_ALL
    }


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of ``doc`` by (method, path)."""
    return {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}


@HttpCase
def test_documents_exactly_the_registered_routes(http: HttpSettings) -> None:
    """Each registered (method, path) is documented, and nothing else: a new route fails here."""
    assert set(operations(spec(http))) == registered(http)


def test_an_extra_route_is_documented_too() -> None:
    """A route given to create_app is registered and in that app's own document."""
    extra = Route("/extra", views.live, Access.PROTECTED, "An extra route", name="extra", tag="x")
    app = create_app(Application(), HttpSettings(), routes=[extra])
    served = orjson.loads(app[DOCUMENT].bytes())
    assert set(served["paths"]["/extra"]) == {"get", "head"}
    assert {("GET", "/extra"), ("HEAD", "/extra")} - set(operations(spec(HttpSettings()))) == {
        ("GET", "/extra"),
        ("HEAD", "/extra"),
    }


def test_admin_routes_exist_only_with_a_token() -> None:
    """The POST admin operations are in the document exactly when the app registers them."""
    assert {("POST", p) for p in ADMIN_PATHS} <= set(operations(spec(SETTINGS["token"])))
    assert not any(p in spec(HttpSettings())["paths"] for p in ADMIN_PATHS)


@HttpCase
def test_security_follows_the_public_paths(http: HttpSettings) -> None:
    """Public routes have ``security: []`` and no 401; the others need the bearer token."""
    doc = spec(http)
    for (_, path), op in operations(doc).items():
        protected = bool(http.http_token) and path not in public_paths(ROUTES, http)
        assert ("401" in op["responses"]) is protected, path
        assert (op.get("security") != []) is protected, path
        if protected:
            www = op["responses"]["401"]["headers"]["WWW-Authenticate"]
            assert www == {"$ref": "#/components/headers/WWW-Authenticate"}
    schemes = doc["components"].get("securitySchemes")
    if http.http_token:
        assert schemes is not None
        assert schemes["bearerAuth"]["type"] == "http"
        assert schemes["bearerAuth"]["scheme"] == "bearer"
        assert doc["security"] == [{"bearerAuth": []}]
    else:
        assert schemes is None
        assert "security" not in doc


@HttpCase
def test_rate_limit_responses_follow_the_settings(http: HttpSettings) -> None:
    """429 and the RateLimit headers appear exactly on the routes the limiter applies to."""
    for (_, path), op in operations(spec(http)).items():
        exempt = http.rate_limit_exempt_paths
        if exempt is None:  # by default, the probes
            exempt = tuple(r.path for r in ROUTES if r.access is Access.PROBE)
        limited = http.rate_limited and path not in exempt
        assert ("429" in op["responses"]) is limited, path
        for code, response in op["responses"].items():
            assert "X-Request-ID" in response["headers"], (path, code)
            assert ("RateLimit-Remaining" in response["headers"]) is limited, (path, code)


def test_head_responses_have_no_body() -> None:
    """HEAD operations mirror GET's statuses and headers, without content."""
    ops = operations(spec(REFERENCE))
    for (method, path), op in ops.items():
        if method != "HEAD":
            continue
        get = ops[("GET", path)]["responses"]
        assert set(op["responses"]) == set(get), path
        assert all("content" not in r for r in op["responses"].values()), path


def test_path_parameters_name_the_components_and_sections() -> None:
    """The ``component`` and ``section`` enums are the application's own names."""
    stats = Application().get_stats()
    assert list(COMPONENTS) == list(Application().components())
    assert set(SECTIONS) == {name for name, value in stats.items() if isinstance(value, dict)}
    params = spec(REFERENCE)["components"]["parameters"]
    assert params["component"]["schema"]["enum"] == list(COMPONENTS)
    assert params["section"]["schema"]["enum"] == list(SECTIONS)


def test_document_is_built_once_per_app() -> None:
    """An app serialises its document once, on first use."""
    doc = Document(REFERENCE, ROUTES)
    assert doc.bytes() is doc.bytes()
    assert orjson.loads(doc.bytes()) == spec(REFERENCE)


def test_no_token_in_the_document() -> None:
    """The document says a token is needed, never which."""
    assert CANARY.encode() not in Document(SETTINGS["token"], ROUTES).bytes()


async def test_served_publicly_by_default(serve: Serve) -> None:
    """GET /openapi.json needs no token by default and serves this app's document."""
    client = await serve(http_token=CANARY)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert "X-Request-ID" in resp.headers
    assert await resp.json() == spec(HttpSettings(http_token=(CANARY,)))
    head = await client.head("/openapi.json")
    assert head.status == 200
    assert await head.read() == b""


async def test_protected_when_not_public(serve: Serve) -> None:
    """Removed from ``http_public_paths``, /openapi.json needs the token like /stats."""
    client = await serve(http_token=CANARY, http_public_paths=("/health",))
    assert (await client.get("/openapi.json")).status == 401
    auth = {"Authorization": f"Bearer {CANARY}"}
    assert (await client.get("/openapi.json", headers=auth)).status == 200


async def test_docs_yaml_is_the_served_document(serve: Serve) -> None:
    """docs/openapi.yaml (``make openapi``) equals what a default app with a token serves."""
    client = await serve(http_token=REFERENCE.http_token)
    served = await (await client.get("/openapi.json")).json()
    assert yaml.safe_load(DOCS_YAML.read_text()) == served, "run `make openapi`"


def test_main_prints_yaml_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m orchestrator.http.openapi`` prints the reference document in YAML or JSON."""
    assert main([]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == spec(REFERENCE)
    assert main(["--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == spec(REFERENCE)


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists properties closed to others."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def validator(doc: dict[str, Any], name: str) -> jsonschema_rs.Validator:
    """A strict validator of schema ``name`` (refs resolved within ``doc``)."""
    root = {
        "$ref": f"#/components/schemas/{name}",
        "components": {"schemas": closed(copy.deepcopy(doc["components"]["schemas"]))},
    }
    return jsonschema_rs.validator_for(root, validate_formats=True)


async def test_every_stats_field_is_documented(session: aiohttp.ClientSession) -> None:
    """A busy application's /stats matches the Stats schema closed to undocumented fields."""
    app = make_app(FakeClock(), http=True, factory=FakeFactory(), pool_min_size=1)
    await app.start()
    try:
        await app.submit("echo", 1)
        async with session.get(f"{app.http_url}/stats") as resp:
            body = await resp.json()
    finally:
        await app.stop(timeout=1.0)
    assert body["pool"]["connections"]
    assert body["workers"]["workers"]
    assert body["registry"]["kinds"]["echo"]["latency_seconds"]["count"] == 1
    errors = [str(e) for e in validator(spec(HttpSettings()), "Stats").iter_errors(body)]
    assert errors == [], "document the field in src/orchestrator/http/openapi/schemas.py"


def test_closed_schema_rejects_an_undocumented_field() -> None:
    """The strict validator is strict: an extra field in a section fails it."""
    stats = Application().get_stats()
    stats["generated_at"] = "2025-12-05T10:30:00Z"
    strict = validator(spec(HttpSettings()), "Stats")
    assert strict.is_valid(stats)
    stats["router"]["surprise_total"] = 1
    assert not strict.is_valid(stats)
