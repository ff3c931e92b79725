"""The 1NCE provider against the running 1NCE simulator: paging, status mapping, actions, usage units,
claim, token lifecycle, retries and the 10 req/s limit."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest

from pulse.integrations.carriers import provider_for
from pulse.integrations.carriers.base import CarrierAuthError, CarrierError, Credentials, NotSupported, Unavailable
from pulse.integrations.carriers.onence import OneNceProvider, mb_to_bytes, parse_time
from pulse.integrations.http import RetryPolicy
from pulse.simulators.onence import OneNceSim, SimCard, luhn_digit
from pulse.simulators.server import SimServer

CLIENT = ("acme-api", "s3cret")
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=2.0, jitter=0)
BASE = "/management-api"
TOKEN_PATH = f"{BASE}/oauth/token"


def iccid(n: int) -> str:
    return f"89882806660000{n:05d}"


def sims(n: int) -> list[SimCard]:
    return [SimCard(iccid(i)) for i in range(1, n + 1)]


@pytest.fixture
def sim() -> OneNceSim:
    return OneNceSim({CLIENT[0]: CLIENT[1]}, sims(3), rate_limit_per_s=None)


@pytest.fixture
def server(sim: OneNceSim) -> Iterator[SimServer]:
    with SimServer(sim) as s:
        yield s


@asynccontextmanager
async def provider(server: SimServer, secret: str = CLIENT[1], **kw: Any) -> AsyncIterator[OneNceProvider]:
    creds = Credentials(api_base_url=f"{server.base_url}{BASE}", api_key=CLIENT[0], api_secret=secret)
    kw.setdefault("rate_per_s", None)
    async with provider_for("1nce", creds, retry=kw.pop("retry", FAST), timeout_s=5, **kw) as p:
        assert isinstance(p, OneNceProvider)
        yield p


async def info_error(server: SimServer, error: type[Exception], number: str = iccid(1),
                     **kw: Any) -> pytest.ExceptionInfo:
    """What `get_device_info(number)` raised, asserted to be an `error`; `kw` configures the provider."""
    async with provider(server, **kw) as p:
        with pytest.raises(error) as e:
            await p.get_device_info(number)
    return e


def requests_to(sim: OneNceSim, path: str, method: str = "GET") -> int:
    return sum(1 for m, p in sim.requests if m == method and p == f"{BASE}{path}")


# ---- reads ------------------------------------------------------------------------------------
async def test_list_devices_walks_every_page() -> None:
    sim = OneNceSim({CLIENT[0]: CLIENT[1]}, sims(230), rate_limit_per_s=None)
    with SimServer(sim) as server:
        async with provider(server) as p:
            devices = [d async for d in p.list_devices()]
    assert [d.iccid for d in devices] == [iccid(i) for i in range(1, 231)]
    assert requests_to(sim, "/v1/sims") == 3  # 100 + 100 + 30
    assert all(d.sim_status == "active" and d.ip_address and d.msisdn for d in devices)


async def test_device_info_maps_sim_and_connectivity_status(sim: OneNceSim, server: SimServer) -> None:
    seen = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    sim.add_sim(iccid(11), connectivity="ONLINE", last_seen=seen, rat_type=8, imei="356938035643811")
    sim.add_sim(iccid(12), connectivity="ATTACHED", last_seen=seen)
    sim.add_sim(iccid(13), connectivity="OFFLINE")
    sim.add_sim(iccid(14), status="Disabled", connectivity="ONLINE")
    async with provider(server) as p:
        online, attached, offline, disabled = [await p.get_device_info(iccid(n)) for n in (11, 12, 13, 14)]
    assert (online.sim_status, online.network_status, online.network_type) == ("active", "ONLINE", "NB-IoT")
    assert online.ip_address == sim.sims[iccid(11)].ip_address and online.last_connection == seen
    assert online.imei == "356938035643811" and online.carrier_device_id == iccid(11)
    assert (attached.network_status, attached.last_connection) == ("ATTACHED", seen)  # from location
    assert (offline.network_status, offline.last_connection) == ("OFFLINE", None)
    assert (disabled.sim_status, disabled.network_status) == ("suspended", "OFFLINE")


async def test_unknown_sim_is_a_404_carrier_error(server: SimServer) -> None:
    e = await info_error(server, CarrierError, iccid(999))
    assert e.value.status == 404 and e.value.code == "NotFound"


async def test_usage_is_this_month_in_bytes_with_the_quota_as_limit(sim: OneNceSim, server: SimServer) -> None:
    today = datetime.now(timezone.utc).date()
    first = today.replace(day=1)
    sim.sims[iccid(1)].quota_mb = 500
    sim.add_usage(iccid(1), today, 1.5, sms=2)
    sim.add_usage(iccid(1), first, 0.25, sms=1)
    sim.add_usage(iccid(1), first - timedelta(days=1), 100.0)  # last month: outside the window
    async with provider(server) as p:
        usage = await p.get_usage(iccid(1))
    assert usage.data_used_bytes == 1_750_000  # 1 MB = 1,000,000 bytes
    assert usage.data_limit_bytes == 500_000_000
    assert usage.sms_count == 3
    assert usage.data_used_pct == 0.35
    assert usage.billing_cycle_start == datetime.combine(first, datetime.min.time(), timezone.utc)
    assert usage.billing_cycle_end is not None and usage.billing_cycle_end.day == 1
    assert usage.billing_cycle_end > usage.billing_cycle_start


def test_default_base_url_is_the_documented_one() -> None:
    assert OneNceProvider.default_base_url == "https://api.1nce.com/management-api"


def test_volume_and_time_parsing() -> None:
    assert mb_to_bytes("0.000001") == 1 and mb_to_bytes("435.78") == 435_780_000 and mb_to_bytes(500) == 500_000_000
    with pytest.raises(CarrierError):
        mb_to_bytes("lots")
    assert parse_time("2024-05-01 10:00:00") == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert parse_time("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert parse_time("never") is None and parse_time(None) is None


# ---- changes ----------------------------------------------------------------------------------
async def test_actions_enable_and_disable_synchronously(sim: OneNceSim, server: SimServer) -> None:
    async with provider(server) as p:
        for action, status, mapped in [("suspend", "Disabled", "suspended"), ("restore", "Enabled", "active"),
                                       ("deactivate", "Disabled", "suspended"), ("activate", "Enabled", "active")]:
            result = await p.action(iccid(1), action)
            assert result.state == "succeeded" and result.request_id is None
            assert sim.sims[iccid(1)].status == status
            assert (await p.get_device_info(iccid(1))).sim_status == mapped
        with pytest.raises(CarrierError) as e:
            await p.action(iccid(999), "suspend")
    assert e.value.status == 404


async def test_reboot_sms_reaches_the_sim(sim: OneNceSim, server: SimServer) -> None:
    async with provider(server) as p:
        result = await p.send_sms(iccid(2), "REBOOT")
    assert result.state == "succeeded"
    assert [m["payload"] for m in sim.sims[iccid(2)].sms] == ["REBOOT"]


async def test_claim_enables_a_preprovisioned_sim(sim: OneNceSim, server: SimServer) -> None:
    sim.add_sim(iccid(20), status="Disabled")
    sim.add_sim(iccid(21), status="Disabled")
    async with provider(server) as p:
        info = await p.claim_sim(iccid(20))
        printed = await p.claim_sim(iccid(21) + luhn_digit(iccid(21)))  # as printed on the card
        with pytest.raises(CarrierError) as unknown:
            await p.claim_sim(iccid(999))
        with pytest.raises(NotSupported):
            await p.claim_sim(iccid(1), plan_id="basic")
    assert info.iccid == iccid(20) and info.sim_status == "active" and sim.sims[iccid(20)].status == "Enabled"
    assert printed.iccid == iccid(21) and sim.sims[iccid(21)].status == "Enabled"
    assert unknown.value.status == 404


async def test_what_1nce_cannot_do(server: SimServer) -> None:
    async with provider(server) as p:
        assert await p.list_plans() == []
        with pytest.raises(NotSupported):
            await p.get_diagnostics(iccid(1))
        with pytest.raises(NotSupported):
            await p.change_plan(iccid(1), "plan-x")
        with pytest.raises(NotSupported):
            await p.request_status("r-1")


# ---- token lifecycle --------------------------------------------------------------------------
async def test_token_is_cached_and_renewed_before_it_expires() -> None:
    sim = OneNceSim({CLIENT[0]: CLIENT[1]}, sims(1), token_ttl_s=1, rate_limit_per_s=None)
    with SimServer(sim) as server:
        async with provider(server) as p:
            await p.get_device_info(iccid(1))
            await p.get_device_info(iccid(1))
            assert sim.count("POST", TOKEN_PATH) == 1
            await asyncio.sleep(0.95)  # within the last tenth of the token's life
            await p.get_device_info(iccid(1))
    assert sim.count("POST", TOKEN_PATH) == 2
    assert requests_to(sim, f"/v1/sims/{iccid(1)}") == 3  # renewed ahead: no refused call repeated


async def test_a_refused_token_is_renewed_once_and_the_call_repeated(sim: OneNceSim, server: SimServer) -> None:
    async with provider(server) as p:
        await p.get_device_info(iccid(1))
        sim.expire_tokens()
        info = await p.get_device_info(iccid(1))
    assert info.iccid == iccid(1)
    assert sim.count("POST", TOKEN_PATH) == 2
    assert requests_to(sim, f"/v1/sims/{iccid(1)}") == 3


async def test_a_call_refused_twice_is_an_auth_error_without_a_loop(sim: OneNceSim, server: SimServer) -> None:
    sim.faults.add(401, times=10, path=f"{BASE}/v1/sims/{iccid(1)}")
    await info_error(server, CarrierAuthError)
    assert sim.count("POST", TOKEN_PATH) == 2
    assert requests_to(sim, f"/v1/sims/{iccid(1)}") == 2


async def test_bad_credentials_fail_at_once_with_one_token_request(sim: OneNceSim, server: SimServer) -> None:
    e = await info_error(server, CarrierAuthError, secret="wrong")
    assert e.value.status == 401
    assert sim.count("POST", TOKEN_PATH) == 1
    assert sim.count("GET", f"{BASE}/v1/sims") == 0


# ---- transport failures -----------------------------------------------------------------------
async def test_5xx_is_retried_then_succeeds(sim: OneNceSim, server: SimServer) -> None:
    sim.faults.add(503, times=2, path=f"{BASE}/v1/sims/{iccid(1)}/status")
    async with provider(server) as p:
        info = await p.get_device_info(iccid(1))
    assert info.network_status == "ONLINE"
    assert requests_to(sim, f"/v1/sims/{iccid(1)}/status") == 3


async def test_an_outage_longer_than_the_retries_is_unavailable(sim: OneNceSim, server: SimServer) -> None:
    sim.faults.add(500, times=4, path=f"{BASE}/v1/sims/{iccid(1)}")
    await info_error(server, Unavailable)
    assert requests_to(sim, f"/v1/sims/{iccid(1)}") == 4


# ---- rate limit -------------------------------------------------------------------------------
async def test_bulk_usage_at_the_documented_limit_is_never_throttled() -> None:
    sim = OneNceSim({CLIENT[0]: CLIENT[1]}, sims(12))  # 10 req/s, as 1NCE documents
    with SimServer(sim) as server:
        async with provider(server, rate_per_s=10.0) as p:
            started = time.monotonic()
            usage = await p.get_bulk_usage([iccid(i) for i in range(1, 13)])
            elapsed = time.monotonic() - started
    assert sorted(usage) == [iccid(i) for i in range(1, 13)]
    assert sim.throttled == []
    assert sim.count("GET", f"{BASE}/v1/sims") == 24  # usage + quota per SIM
    assert elapsed >= 2.0  # 24 calls spaced 0.1 s apart: the client kept to the limit itself


async def test_429s_are_retried_after_retry_after_until_everything_completes() -> None:
    sim = OneNceSim({CLIENT[0]: CLIENT[1]}, sims(12), rate_limit_per_s=10)
    with SimServer(sim) as server:
        async with provider(server, rate_per_s=None) as p:  # an unpaced client: faster than the limit
            started = time.monotonic()
            usage = await p.get_bulk_usage([iccid(i) for i in range(1, 13)])
            elapsed = time.monotonic() - started
    assert len(usage) == 12 and all(u.data_limit_bytes == 500_000_000 for u in usage.values())
    assert sim.throttled  # the limit was hit ...
    assert sim.count("GET", f"{BASE}/v1/sims") == 24 + len(sim.throttled)  # ... and every 429 was retried
    assert elapsed >= 1.0  # Retry-After: 1 was honoured (the backoff alone is 10 ms)


async def test_bulk_usage_leaves_out_sims_1nce_no_longer_knows(server: SimServer) -> None:
    async with provider(server) as p:
        usage = await p.get_bulk_usage([iccid(1), iccid(999), iccid(2)])
    assert sorted(usage) == [iccid(1), iccid(2)]
