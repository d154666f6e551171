"""Core settings: validation, parsing of text values and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import ConfigError, CoreSettings
from orchestrator.environment import from_env, parse_value, read_token_file, unknown_variables


def test_defaults_are_valid() -> None:
    """The default settings validate and match the documented defaults."""
    s = CoreSettings()
    assert (s.name, s.workers, s.queue_size, s.pool_min_size, s.pool_max_size) == (
        "orchestrator",
        4,
        1024,
        0,
        8,
    )
    assert (s.recycle_interval, s.saturation_grace, s.restart_backoff) == (1.0, 5.0, 0.1)
    assert s.max_jobs_per_worker is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("workers", 0),
        ("workers", -1),
        ("workers", 2.0),
        ("workers", True),
        ("queue_size", 0),
        ("pool_min_size", -1),
        ("pool_max_size", 0),
        ("pool_acquire_timeout", 0),
        ("pool_acquire_timeout", float("nan")),
        ("pool_acquire_timeout", "5"),
        ("max_jobs_per_worker", 0),
        ("max_connection_uses", -3),
        ("max_worker_age", 0.0),
        ("max_connection_age", float("inf")),
        ("connection_idle_timeout", -1.0),
        ("recycle_interval", 0),
        ("saturation_grace", -0.1),
        ("restart_backoff", -1),
    ],
    ids=lambda v: repr(v),
)
def test_invalid_values_raise_config_error(field: str, value: Any) -> None:
    """Each field rejects values of the wrong type or out of range, naming the field."""
    with pytest.raises(ConfigError, match=field) as caught:
        CoreSettings(**{field: value})
    assert caught.value.setting == field


@pytest.mark.parametrize(
    ("field", "value"),
    [("saturation_grace", 0), ("restart_backoff", 0.0), ("pool_min_size", 8),
     ("max_worker_age", 0.5), ("max_jobs_per_worker", 1)],
    ids=["zero-grace", "zero-backoff", "min-equals-max", "fractional-age", "one-job"],
)  # fmt: skip
def test_boundary_values_are_accepted(field: str, value: Any) -> None:
    """Zero where >= 0 is allowed, min == max and the smallest positive limits validate."""
    assert getattr(CoreSettings(**{field: value}), field) == value


def test_min_size_above_max_size_is_rejected() -> None:
    """pool_min_size greater than pool_max_size raises ConfigError naming both."""
    with pytest.raises(ConfigError, match=r"pool_min_size \(3\) must be <= pool_max_size \(2\)"):
        CoreSettings(pool_min_size=3, pool_max_size=2)


def test_replace_validates_again() -> None:
    """replace() returns a validated copy and leaves the original untouched."""
    base = CoreSettings()
    assert base.replace(workers=9).workers == 9
    assert base.workers == 4
    with pytest.raises(ConfigError):
        base.replace(workers=0)


@pytest.mark.parametrize(
    ("hint", "raw", "expected"),
    [
        (int, "12", 12),
        (int, " 7 ", 7),
        (float, "0.25", 0.25),
        (bool, "yes", True),
        (bool, "Off", False),
        (bool, "1", True),
        (int | None, "none", None),
        (int | None, "", None),
        (float | None, "2.5", 2.5),
        (str, "name", "name"),
        (tuple[str, ...], "a, b,,c", ("a", "b", "c")),
    ],
    ids=[
        "int",
        "int-spaces",
        "float",
        "bool-yes",
        "bool-off",
        "bool-1",
        "optional-none",
        "optional-empty",
        "optional-float",
        "str",
        "tuple",
    ],
)
def test_parse_value(hint: Any, raw: str, expected: Any) -> None:
    """Text from flags or the environment parses into the field's type."""
    assert parse_value("X", hint, raw) == expected


@pytest.mark.parametrize(
    ("hint", "raw"),
    [(int, "abc"), (int, "1.5"), (float, "fast"), (bool, "maybe"), (int | None, "many")],
    ids=["int", "int-float", "float", "bool", "optional-int"],
)
def test_unparsable_text_raises_config_error_naming_the_variable(hint: Any, raw: str) -> None:
    """Unparsable text raises ConfigError naming the variable and the text."""
    with pytest.raises(ConfigError, match=rf"ORCHESTRATOR_X: cannot parse '{raw}'"):
        parse_value("ORCHESTRATOR_X", hint, raw)


def test_from_env_reads_prefixed_variables() -> None:
    """from_env() reads ORCHESTRATOR_<FIELD> variables and ignores others."""
    environ = {
        "ORCHESTRATOR_WORKERS": "6",
        "ORCHESTRATOR_MAX_WORKER_AGE": "30",
        "ORCHESTRATOR_MAX_JOBS_PER_WORKER": "none",
        "WORKERS": "99",
    }
    s = from_env(CoreSettings, environ)
    assert (s.workers, s.max_worker_age, s.max_jobs_per_worker) == (6, 30.0, None)


def test_explicit_values_win_over_the_environment() -> None:
    """A value given explicitly (a flag) takes precedence over its environment variable."""
    s = from_env(CoreSettings, {"ORCHESTRATOR_WORKERS": "6"}, workers=2)
    assert s.workers == 2


@pytest.mark.parametrize(
    ("environ", "explicit", "match"),
    [
        ({"ORCHESTRATOR_WORKERS": "abc"}, {}, "ORCHESTRATOR_WORKERS: cannot parse 'abc'"),
        (
            {"ORCHESTRATOR_WORKERS": "-2"},
            {},
            "^ORCHESTRATOR_WORKERS: workers must be an integer >= 1",
        ),
        ({}, {"threads": 2}, "unknown setting"),
        ({"ORCHESTRATOR_POOL_MIN_SIZE": "9"}, {}, "^ORCHESTRATOR_POOL_MIN_SIZE: pool_min_size"),
        ({"ORCHESTRATOR_WORKERS": "0"}, {"workers": 0}, "^workers must be"),
    ],
    ids=["unparsable", "out-of-range", "unknown-explicit", "min-above-default-max", "explicit"],
)
def test_from_env_errors(environ: dict[str, str], explicit: dict[str, Any], match: str) -> None:
    """Bad environment values or unknown explicit names raise ConfigError."""
    with pytest.raises(ConfigError, match=match):
        from_env(CoreSettings, environ, **explicit)


def test_unknown_variables_are_named() -> None:
    """ORCHESTRATOR_* names that no setting reads are returned sorted; others are ignored."""
    names = ["ORCHESTRATOR_WOKERS", "ORCHESTRATOR_WORKERS", "ORCHESTRATOR_HTTP_TOKEN_FILE",
             "ORCHESTRATOR_HTTP_PORTT", "PATH", "ORCHESTRATOR_URL"]  # fmt: skip
    assert unknown_variables(names) == ["ORCHESTRATOR_HTTP_PORTT", "ORCHESTRATOR_WOKERS"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "is a directory, not a file"),
        (lambda p: _write(p / "t", b"\xff\xfe"), "is not UTF-8 text"),
        (lambda p: _write(p / "t", b"# only a comment\n\n"), "holds no token"),
    ],
    ids=["missing", "directory", "not-utf8", "empty"],
)
def test_token_file_errors_are_sentences(tmp_path: Path, make: Any, message: str) -> None:
    """A token file that cannot serve says why in words, naming the file, not its content."""
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        read_token_file(str(path))
    text = str(caught.value)
    assert message in text
    assert repr(str(path)) in text
    assert "Error" not in text  # no exception class names


def test_token_file_tokens_one_per_line(tmp_path: Path) -> None:
    """Tokens are read one per line; blank lines and comments are skipped."""
    path = _write(tmp_path / "t", b"# ops\nabc\n\n  def  \n")
    assert read_token_file(str(path)) == ("abc", "def")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
