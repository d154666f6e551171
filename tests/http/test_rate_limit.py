"""Per-client rate limiting: immediate 429s, exempt probes, bounded state, client keys."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.config import HttpSettings
from orchestrator.errors import ConfigError
from orchestrator.http.api_error import ApiError
from orchestrator.http.client import group_address
from orchestrator.http.concerns.rate_limit import RateLimiter
from tests.http.helpers import CANARY, Serve

SLOW = {"rate_limit": 3 / 60, "rate_limit_burst": 3}  # 3 at once, then one per 20 s


async def test_429_after_burst_with_headers_and_no_wait(serve: Serve) -> None:
    """After the burst, the next request is a 429 with Retry-After and RateLimit-* at once."""
    client = await serve(**SLOW)
    remaining = []
    for _ in range(3):
        async with client.get("/stats") as resp:
            assert resp.status == 200
            assert resp.headers["RateLimit-Limit"] == "3"
            remaining.append(int(resp.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    async with asyncio.timeout(2):  # a queued request would wait ~20 s for capacity
        async with client.get("/stats") as resp:
            body = await resp.json()
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
            assert resp.headers["RateLimit-Remaining"] == "0"
            assert int(resp.headers["RateLimit-Reset"]) >= 1
            assert resp.headers["X-Request-ID"] == body["request_id"]
    assert body["error"] == "too_many_requests"


@pytest.mark.parametrize("path", ["/health", "/health/pool", "/live", "/ready"])
async def test_probes_exempt_by_default(serve: Serve, path: str) -> None:
    """Probe routes are never rate limited by default, even far past the burst."""
    client = await serve(rate_limit=1 / 60, rate_limit_burst=1)
    for _ in range(30):
        async with client.get(path) as resp:
            assert resp.status == 200
            assert "RateLimit-Limit" not in resp.headers


async def test_probes_limited_when_not_exempt(serve: Serve) -> None:
    """With an empty exempt list, probes are limited like everything else."""
    client = await serve(rate_limit=1 / 60, rate_limit_burst=1, rate_limit_exempt_paths=())
    statuses = []
    for _ in range(3):
        async with client.get("/live") as resp:
            statuses.append(resp.status)
    assert statuses == [200, 429, 429]


async def test_disabled_with_zero_or_none(serve: Serve) -> None:
    """rate_limit=0 or None disables limiting."""
    for value in (0, None):
        client = await serve(rate_limit=value)
        for _ in range(20):
            async with client.get("/stats") as resp:
                assert resp.status == 200
                assert "RateLimit-Limit" not in resp.headers


async def test_forwarded_for_ignored_without_trusted_proxy(serve: Serve) -> None:
    """X-Forwarded-For from an untrusted peer does not give a fresh budget."""
    client = await serve(rate_limit=1 / 60, rate_limit_burst=1)
    async with client.get("/stats", headers={"X-Forwarded-For": "198.51.100.1"}) as resp:
        assert resp.status == 200
    async with client.get("/stats", headers={"X-Forwarded-For": "198.51.100.2"}) as resp:
        assert resp.status == 429


async def test_forwarded_for_used_behind_trusted_proxy(serve: Serve) -> None:
    """Behind a trusted proxy, each forwarded client has its own budget."""
    client = await serve(rate_limit=1 / 60, rate_limit_burst=1, trusted_proxies=("127.0.0.0/8",))
    for hop in ("198.51.100.1", "198.51.100.2"):
        async with client.get("/stats", headers={"X-Forwarded-For": f"{hop}, 127.0.0.5"}) as r:
            assert r.status == 200
    async with client.get("/stats", headers={"X-Forwarded-For": "198.51.100.1"}) as resp:
        assert resp.status == 429


async def test_authenticated_client_keyed_by_token(serve: Serve) -> None:
    """A token's budget is its own: exhausting it leaves the address's budget untouched."""
    client = await serve(http_token=(CANARY,), rate_limit=1 / 60, rate_limit_burst=1)
    auth = {"Authorization": f"Bearer {CANARY}"}
    async with client.get("/stats", headers=auth) as resp:
        assert resp.status == 200
    async with client.get("/stats", headers=auth) as resp:
        assert resp.status == 429
    async with client.get("/stats") as resp:
        assert resp.status == 401  # the address's own bucket still has room


async def test_limiter_map_bounded_by_max_clients() -> None:
    """10,000+ distinct client keys keep the limiter map at its bound."""
    limiter = RateLimiter(100.0, 100, max_clients=1000)
    for i in range(12_000):
        await limiter.admit(f"198.51.{i // 256}.{i % 256}")
    assert limiter.clients == 1000


async def test_busy_client_entry_not_reset_by_ttl() -> None:
    """Each use re-inserts the bucket, so an active client's spent budget survives its TTL."""
    now = [0.0]
    limiter = RateLimiter(2 / 60, 2, max_clients=10, timer=lambda: now[0])  # TTL 60 s
    await limiter.admit("a")
    now[0] = 50.0
    await limiter.admit("a")  # refreshes the entry: it now lives until t=110
    now[0] = 100.0
    with pytest.raises(ApiError) as info:
        await limiter.admit("a")
    assert info.value.status == 429
    now[0] = 200.0  # idle past its TTL: the entry is gone, and a fresh bucket admits
    await limiter.admit("a")


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("fe80::1%eth0", "fe80::/64"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_group_address(address: str, group: str) -> None:
    """IPv6 clients are grouped by /64; IPv4 and mapped IPv4 stand alone."""
    assert group_address(address) == group


@pytest.mark.parametrize(
    "settings",
    [
        {"rate_limit": -1},
        {"rate_limit_burst": 0},
        {"rate_limit_max_clients": 0},
        {"trusted_proxies": ("not-a-network",)},
    ],
    ids=["negative-rate", "zero-burst", "zero-clients", "bad-proxy"],
)
def test_bad_rate_limit_settings(settings: dict[str, object]) -> None:
    """Invalid rate-limit settings are a ConfigError."""
    with pytest.raises(ConfigError):
        HttpSettings(**settings)  # type: ignore[arg-type]


SPOOFS = [f"for=198.51.100.{n}" for n in range(1, 4)]


async def test_x_forwarded_for_by_default_and_forwarded_never_read(serve: Serve) -> None:
    """Behind a proxy appending X-Forwarded-For, a client's own Forwarded header changes nothing.

    The client sends a different ``Forwarded`` each time; its key is the X-Forwarded-For hop
    the proxy appended, so it stays in one bucket and its second request is refused.
    """
    client = await serve(rate_limit=1 / 60, rate_limit_burst=1, trusted_proxies=("127.0.0.0/8",))
    statuses = []
    for spoof in SPOOFS:
        headers = {"Forwarded": spoof, "X-Forwarded-For": "203.0.113.7"}
        async with client.get("/stats", headers=headers) as resp:
            statuses.append(resp.status)
    assert statuses == [200, 429, 429]


async def test_forwarded_header_setting_reads_only_forwarded(serve: Serve) -> None:
    """With forwarded_header="forwarded", a varying X-Forwarded-For stays in one bucket."""
    client = await serve(
        rate_limit=1 / 60, rate_limit_burst=1, trusted_proxies=("127.0.0.0/8",),
        forwarded_header="forwarded",
    )  # fmt: skip
    statuses = []
    for n in range(1, 4):
        headers = {"Forwarded": "for=203.0.113.7", "X-Forwarded-For": f"198.51.100.{n}"}
        async with client.get("/stats", headers=headers) as resp:
            statuses.append(resp.status)
    assert statuses == [200, 429, 429]
    async with client.get("/stats", headers={"Forwarded": 'for="[2001:db8::1]:4711"'}) as resp:
        assert resp.status == 200  # another client by Forwarded: its own bucket


def test_forwarded_header_must_be_known() -> None:
    """Any other header name is a ConfigError naming the choices."""
    with pytest.raises(ConfigError, match="x-forwarded-for, forwarded"):
        HttpSettings(forwarded_header="x-real-ip")
