"""The worker recipe: its image, its Deployment and the KEDA ScaledObject agree.

The image (docs/examples/worker.Containerfile) holds the module the Deployment runs; the
ScaledObject watches the stream, group, address and database of the Deployment's
``--source``, and scales that Deployment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "deploy" / "kubernetes" / "worker.yaml"
SCALED_OBJECT = ROOT / "deploy" / "kubernetes" / "worker-scaledobject.yaml"
CONTAINERFILE = ROOT / "docs" / "examples" / "worker.Containerfile"  # hadolint: test_packaging
BASE_CONTAINERFILE = ROOT / "Containerfile"


def documents(path: Path) -> dict[str, dict[str, Any]]:
    """The YAML documents of ``path`` by kind (each kind once)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), f"{path.name}: a kind twice"
    return by_kind


DEPLOYMENT = documents(WORKER)["Deployment"]
SCALED = documents(SCALED_OBJECT)["ScaledObject"]
(CONTAINER,) = DEPLOYMENT["spec"]["template"]["spec"]["containers"]


def option(args: list[str], name: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``args`` (exactly once)."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]
    values += [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]
    (value,) = values
    return value


def source_mismatches(deployment: dict[str, Any], scaled: dict[str, Any]) -> list[str]:
    """How the ScaledObject's redis-streams trigger and target differ from the Deployment
    and its ``--source`` URL (empty when they agree)."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    url = urlsplit(option(container["args"], "--source"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    (trigger,) = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    expected = {
        "type": ("redis-streams", trigger["type"]),
        "stream": (query["stream"], meta.get("stream")),
        "consumerGroup": (query["group"], meta.get("consumerGroup")),
        "address": (f"{url.hostname}:{url.port or 6379}", meta.get("address")),
        "databaseIndex": (url.path.lstrip("/") or "0", meta.get("databaseIndex", "0")),
        "scaleTargetRef.name": (deployment["metadata"]["name"],
                                scaled["spec"]["scaleTargetRef"]["name"]),
        "scaleTargetRef.kind": ("Deployment",
                                scaled["spec"]["scaleTargetRef"].get("kind", "Deployment")),
    }  # fmt: skip
    return [f"{key}: {want!r} != {got!r}" for key, (want, got) in expected.items() if want != got]


def test_the_scaled_object_watches_the_deployment_source() -> None:
    """Stream, group, address and database of the trigger are those of ``--source``; the
    scale target is the worker Deployment."""
    url = option(CONTAINER["args"], "--source")
    assert url == "redis://redis:6379/0?stream=jobs&group=workers"
    assert source_mismatches(DEPLOYMENT, SCALED) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [(("stream",), "other"), (("consumerGroup",), "readers"), (("address",), "redis:6380"),
     (("databaseIndex",), "1")],
    ids=["stream", "group", "address", "database"],
)  # fmt: skip
def test_the_comparison_catches_a_mismatch(path: tuple[str, ...], value: str) -> None:
    """The check is not vacuous: a ScaledObject watching anything else is reported."""
    changed = orjson.loads(orjson.dumps(SCALED))
    changed["spec"]["triggers"][0]["metadata"][path[0]] = value
    (mismatch,) = source_mismatches(DEPLOYMENT, changed)
    assert mismatch.startswith(path[0])


def test_the_comparison_catches_another_scale_target() -> None:
    """A ScaledObject scaling another Deployment is reported."""
    renamed = orjson.loads(orjson.dumps(SCALED))
    renamed["spec"]["scaleTargetRef"]["name"] = "orchestrator"
    assert source_mismatches(DEPLOYMENT, renamed) == [
        "scaleTargetRef.name: 'orchestrator-worker' != 'orchestrator'"
    ]


def test_the_scaled_object_scales_on_lag_and_owns_the_replica_count() -> None:
    """KEDA's lag trigger (with its activation threshold) and bounds; the Deployment sets
    no replica count for ``kubectl apply`` to set back."""
    assert SCALED["apiVersion"] == "keda.sh/v1alpha1"
    meta = SCALED["spec"]["triggers"][0]["metadata"]
    assert int(meta["lagCount"]) > 0
    assert int(meta["activationLagCount"]) >= 0
    assert 0 <= SCALED["spec"]["minReplicaCount"] < SCALED["spec"]["maxReplicaCount"]
    assert "replicas" not in DEPLOYMENT["spec"]


def test_the_deployment_runs_the_example_module_of_the_image() -> None:
    """The container runs ``worker:app`` from ``--app-dir``, the folder the recipe copies
    docs/examples/worker.py into, in the image the recipe's comment builds."""
    text = CONTAINERFILE.read_text()
    args = CONTAINER["args"]
    app_dir = option(args, "--app-dir")
    targets = [a for a in args if re.fullmatch(r"[\w.]+:[\w.]+", a)]
    assert targets == ["worker:app"]
    copies = re.findall(r"^COPY (\S+) (\S+)$", text, flags=re.MULTILINE)
    assert copies == [("docs/examples/worker.py", app_dir + "/")]
    assert all((ROOT / source).is_file() for source, _ in copies)
    (cmd,) = re.findall(r"^CMD (.+)$", text, flags=re.MULTILINE)
    assert orjson.loads(cmd)[:2] == ["orchestrator", "run"]
    assert {f"--app-dir={app_dir}", "worker:app"} <= set(orjson.loads(cmd))
    (built,) = re.findall(r"-t (\S+) \.", text)
    assert CONTAINER["image"] == built
    (base,) = re.findall(r"^FROM (\S+)$", text, flags=re.MULTILINE)
    assert f"-t {base} ." in BASE_CONTAINERFILE.read_text()  # the tag ours is built as


def test_no_secret_in_the_arguments_and_the_stop_fits_the_grace_period() -> None:
    """The token comes from a Secret; the grace period covers the job wait and the HTTP
    shutdown; /live and /ready probe the worker like the others."""
    env = {e["name"]: e for e in CONTAINER["env"]}
    assert "secretKeyRef" in env["ORCHESTRATOR_HTTP_TOKEN"]["valueFrom"]
    assert not any("token" in a.lower() for a in CONTAINER["args"])
    assert urlsplit(option(CONTAINER["args"], "--source")).password is None
    stop = float(option(CONTAINER["args"], "--stop-timeout"))
    shutdown = float(env["ORCHESTRATOR_HTTP_SHUTDOWN_TIMEOUT"]["value"])
    grace = DEPLOYMENT["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > stop + shutdown
    assert CONTAINER["livenessProbe"]["httpGet"]["path"] == "/live"
    assert CONTAINER["readinessProbe"]["httpGet"]["path"] == "/ready"
