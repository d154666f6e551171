"""The configuration reference documents every setting, with its environment variable."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from orchestrator.config import CoreSettings, HttpSettings
from orchestrator.environment import env_name

DOC = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
FIELDS = [f for cls in (CoreSettings, HttpSettings) for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_every_setting_documented(field: dataclasses.Field[object]) -> None:
    """Each settings field has a row naming its keyword and environment variable."""
    rows = [line for line in DOC.splitlines() if line.startswith(f"| `{field.name}` |")]
    assert len(rows) == 1, f"{field.name} missing from docs/configuration.md"
    assert f"`{env_name(field)}`" in rows[0]


def test_the_flag_column_is_the_flag_table() -> None:
    """docs/configuration.md names, for each setting, the flag of `orchestrator run` that the
    command's flag table gives it, and no flag for the others."""
    from orchestrator.cli import FLAGS

    documented = {}
    for field in FIELDS:
        (row,) = [line for line in DOC.splitlines() if line.startswith(f"| `{field.name}` |")]
        documented[field.name] = row.split("|")[2].strip().strip("`")
    flags = {flag.setting: flag.name for flag in FLAGS}
    flags["http_token"] = "--token-file PATH"  # a file of tokens: a token is never a flag
    assert documented == {f.name: flags.get(f.name, "") for f in FIELDS}


def test_the_endpoint_table_lists_every_route() -> None:
    """docs/http-api.md's endpoint table names each route of the route table, and no other."""
    from orchestrator.http.routes import ROUTES

    api = (Path(__file__).parent.parent / "docs" / "http-api.md").read_text()
    table = api.split("## Endpoints", 1)[1].split("\n\n", 2)[1]
    documented = set()
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        documented |= set(re.findall(r"`(?:[A-Z]+ )?(/[^`]*)`", first))
    assert documented == {route.path for route in ROUTES}


ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_lead_to_files(page: Path) -> None:
    """Every relative link of the README and the docs names a file of the repository."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # not in code blocks
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    missing = [t for t in local if not (page.parent / t).exists()]
    assert missing == []
