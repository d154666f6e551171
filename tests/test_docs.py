"""The configuration reference documents every setting, with its environment variable."""

from __future__ import annotations

import dataclasses
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
