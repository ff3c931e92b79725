"""TelemetronSync end to end: owner and device changes in the real store write outbox rows in their
own transaction, and drains deliver them to the real Telemetron simulator over HTTP — in order,
exactly once across an outage, without duplicates on replay."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulse.services.telemetron_sync import TelemetronSync
from pulse.config.settings import Settings
from pulse.errors import NotFound
from pulse.simulators.server import SimServer
from pulse.simulators.telemetron import API_PREFIX, DEMO_API_KEY, TelemetronSim
from pulse.services import owners
from pulse.storage import devices, outbox, telemetron, tenants
from pulse.storage.db import Database
from pulse.storage.secrets import box_for
from pulse.storage.tables import outbox as outbox_table

TOPIC = telemetron.TOPIC


@pytest.fixture(scope="module")
def served() -> Iterator[SimServer]:
    with SimServer(TelemetronSim()) as s:
        yield s


@dataclass
class Kit:
    db: Database
    sync: TelemetronSync
    server: SimServer
    settings: Settings

    @property
    def sim(self) -> TelemetronSim:
        return self.server.sim

    async def integrate(self, tenant: str = "acme", api_key: str = DEMO_API_KEY, **fields) -> None:
        await telemetron.put_integration(self.db, box_for(self.settings), tenant, {
            "base_url": self.server.base_url + API_PREFIX, "api_key": api_key, **fields})

    async def device(self, device_id: str, tenant: str = "acme", **fields) -> None:
        await devices.create(self.db, tenant, {"device_id": device_id, "model": "BX-2", **fields})

    async def own(self, device_id: str, *emails: str, tenant: str = "acme") -> None:
        await owners.replace_owners(self.db, tenant, device_id,
                                    [{"email": e, "name": e.split("@")[0].title()} for e in emails])

    async def rows(self, tenant: str = "acme", status: str | None = None) -> list[dict]:
        q = sa.select(outbox_table).where(outbox_table.c.tenant_id == tenant).order_by(outbox_table.c.id)
        if status:
            q = q.where(outbox_table.c.status == status)
        async with self.db.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(q)]

    async def ops(self, tenant: str = "acme", status: str | None = None) -> list[tuple[str, str]]:
        return [(r["aggregate_id"], r["operation"]) for r in await self.rows(tenant, status)]


@pytest.fixture
async def kit(db_url: str, tmp_path: Path, served: SimServer) -> AsyncIterator[Kit]:
    served.sim.reset()
    served.start()  # a test may have stopped it
    settings = Settings(data_dir=tmp_path / "pulse", database_url=db_url, telemetron_retry_attempts=2,
                        telemetron_retry_base_s=0.01, telemetron_backoff_base_s=0.0, telemetron_http_timeout_s=2.0)
    db = Database(db_url)
    await db.migrate()
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    sync = TelemetronSync(settings, db)
    await sync.start()
    try:
        yield Kit(db, sync, served, settings)
    finally:
        await sync.stop()
        await db.dispose()


def sent(sim: TelemetronSim) -> list[str]:
    """The API routes the simulator received, in order, without the prefix."""
    return [p.removeprefix(API_PREFIX) for _, p in sim.requests]


# ---- writing the outbox ----------------------------------------------------------------------------
async def test_without_an_integration_changes_write_no_rows(kit):
    await kit.device("d1")
    await kit.own("d1", "jane@example.com")
    await devices.update(kit.db, "acme", "d1", {"name": "Boiler"})
    assert await kit.rows() == []


async def test_owner_change_writes_ordered_rows_in_its_transaction(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "jane@example.com", "joe@example.com")
    assert await kit.ops() == [("d1", "upsert_customer"), ("d1", "upsert_customer"), ("d1", "upsert_device"),
                               ("d1", "assign")]
    rows = await kit.rows()
    assert rows[-1]["payload"]["emails"] == ["jane@example.com", "joe@example.com"]
    assert rows[2]["payload"]["identifier"] == "d1" and rows[2]["payload"]["type"] == "BX-2"
    await kit.own("d1", "jane@example.com", "joe@example.com")  # nothing changed: nothing to send
    assert len(await kit.rows()) == 4


async def test_a_change_that_fails_leaves_no_rows(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "jane@example.com")
    before = len(await kit.rows())
    with pytest.raises(RuntimeError):
        async with kit.db.begin() as conn:
            await conn.execute(sa.text("UPDATE devices SET name = 'x' WHERE device_id = 'd1'"))
            await telemetron.device_changed(conn, "acme", "d1")
            raise RuntimeError("the rest of the change failed")
    with pytest.raises(NotFound):
        await owners.replace_owners(kit.db, "acme", "missing", [{"email": "a@example.com", "name": "A"}])
    assert len(await kit.rows()) == before
    assert (await devices.get(kit.db, "acme", "d1"))["name"] is None


async def test_device_updates_of_owned_devices_only_are_queued(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.device("d2")
    await kit.own("d1", "jane@example.com")
    count = len(await kit.rows())
    await devices.update(kit.db, "acme", "d1", {"name": "Boiler", "site_id": "s1", "metadata": {"floor": 2}})
    await devices.update(kit.db, "acme", "d2", {"name": "Not owned"})
    rows = (await kit.rows())[count:]
    assert [(r["aggregate_id"], r["operation"]) for r in rows] == [("d1", "upsert_device")]
    assert rows[0]["payload"]["properties"] == {"platformDeviceId": "d1", "name": "Boiler", "model": "BX-2",
                                                     "siteId": "s1", "status": "ACTIVE", "metadata": {"floor": 2}}


# ---- draining ------------------------------------------------------------------------------------
async def test_drain_delivers_in_order_and_marks_rows_delivered(kit):
    await kit.integrate()
    await kit.device("d1", name="Boiler")
    await kit.own("d1", "jane@example.com")
    assert await kit.sync.drain() == 3
    assert sent(kit.sim) == ["/customer/createOrUpdateCustomer", "/device", "/deviceAssignment/assignDeviceToOwners"]
    jane = kit.sim.customer_by_email("jane@example.com")
    assert jane["name"] == "Jane" and kit.sim.owners_of("d1") == {"jane@example.com"}
    assert kit.sim.devices["d1"]["properties"]["name"] == "Boiler"
    assert await kit.rows(status="PENDING") == [] and len(await kit.rows(status="DELIVERED")) == 3
    [ours] = (await owners.list_owners(kit.db, "acme", "d1"))
    assert await telemetron.telemetron_customer_id(kit.db, "acme", ours["customer_id"]) == jane["id"]
    status = await kit.sync.status("acme")
    assert status["pending"] == 0 and status["delivered"] == 3 and status["last_sync_at"] is not None
    assert await kit.sync.drain() == 0


async def test_outage_loses_nothing_and_delivers_each_change_once_in_order(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.device("d2")
    kit.server.stop()
    await kit.own("d1", "jane@example.com")
    await devices.update(kit.db, "acme", "d1", {"name": "Renamed"})
    await kit.own("d2", "joe@example.com")
    await kit.own("d1", "ann@example.com")  # transfer while Telemetron is down
    queued = len(await kit.rows(status="PENDING"))
    assert queued == 11

    assert await kit.sync.drain() == 0
    assert len(await kit.rows(status="PENDING")) == queued  # nothing lost
    status = await kit.sync.status("acme")
    assert status["pending"] == queued and "unavailable" in status["last_error"]
    await kit.own("d2", "joe@example.com", "amy@example.com")  # the outbox keeps growing meanwhile
    assert len(await kit.rows(status="PENDING")) == queued + 3
    assert kit.sim.requests == []

    kit.server.start()
    assert await kit.sync.drain() == queued + 3
    assert await kit.rows(status="PENDING") == [] and await kit.rows(status="FAILED") == []
    assert kit.sim.owners_of("d1") == {"ann@example.com"}
    assert kit.sim.owners_of("d2") == {"joe@example.com", "amy@example.com"}
    assert kit.sim.devices["d1"]["properties"]["name"] == "Renamed"
    assert {c["email"] for c in kit.sim.customers.values()} == {"jane@example.com", "joe@example.com",
                                                                "ann@example.com", "amy@example.com"}
    assert kit.sim.hits("/customer/createOrUpdateCustomer") == 4 and kit.sim.hits("/device") == 5
    assert kit.sim.hits("/deviceAssignment/unassignDeviceFromOwner") == 1
    assert kit.sim.hits("/deviceAssignment/assignDeviceToOwners") == 4
    # device by device, each in the order of its changes: d1 first (its first row is older), then d2
    customer, device = "/customer/createOrUpdateCustomer", "/device"
    assign, unassign = "/deviceAssignment/assignDeviceToOwners", "/deviceAssignment/unassignDeviceFromOwner"
    assert sent(kit.sim) == [customer, device, assign, device, customer, device, unassign, assign,
                             customer, device, assign, customer, device, assign]
    assert (await kit.sync.status("acme"))["last_error"] is None


async def test_replaying_delivered_rows_after_a_crash_creates_no_duplicates(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.device("d2")
    await kit.own("d1", "jane@example.com")
    await kit.own("d2", "jane@example.com", "joe@example.com")
    await kit.own("d1", "joe@example.com")
    delivered = await kit.sync.drain()
    state = (len(kit.sim.customers), len(kit.sim.devices), set(kit.sim.assignments))
    # a crash after Telemetron accepted but before the rows were marked: all of them come again
    assert await outbox.requeue(kit.db, TOPIC, "acme", statuses=("DELIVERED",)) == delivered
    async with kit.db.begin() as conn:  # and the id map was lost too
        await conn.execute(sa.text("DELETE FROM telemetron_customers"))
    assert await kit.sync.drain() == delivered
    assert (len(kit.sim.customers), len(kit.sim.devices), set(kit.sim.assignments)) == state
    assert kit.sim.owners_of("d1") == {"joe@example.com"} and kit.sim.tickets == []


async def test_an_existing_customer_is_recovered_with_query_customer_on_409(kit):
    theirs = kit.sim.add_customer("jane@example.com", name="Old Name")
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "jane@example.com")
    assert await kit.sync.drain() == 3
    assert kit.sim.hits("/customer/queryCustomer") == 1 and len(kit.sim.customers) == 1
    assert kit.sim.customers[theirs["id"]]["name"] == "Jane"  # updated after the recovery
    [ours] = await owners.list_owners(kit.db, "acme", "d1")
    assert await telemetron.telemetron_customer_id(kit.db, "acme", ours["customer_id"]) == theirs["id"]


async def test_transfer_unassigns_the_old_owner_then_assigns_the_new(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "old@example.com")
    await kit.sync.drain()
    kit.sim.requests.clear()
    await kit.own("d1", "new@example.com")
    await kit.sync.drain()
    assert sent(kit.sim) == ["/customer/createOrUpdateCustomer", "/device",
                             "/deviceAssignment/unassignDeviceFromOwner", "/deviceAssignment/assignDeviceToOwners"]
    assert kit.sim.owners_of("d1") == {"new@example.com"}
    assert kit.sim.customer_by_email("old@example.com") is not None  # unassigning keeps the customer


async def test_refused_rows_fail_without_blocking_their_device(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "jane@example.com")
    kit.sim.faults.add(status=400, times=1, path=f"{API_PREFIX}/device")
    assert await kit.sync.drain() == 2
    [failed] = await kit.rows(status="FAILED")
    assert failed["operation"] == "upsert_device" and "400" in failed["last_error"]
    assert kit.sim.owners_of("d1") == {"jane@example.com"}  # the assign after it went through
    status = await kit.sync.status("acme")
    assert status["failed"] == 1 and status["recent_failures"][0]["operation"] == "upsert_device"


async def test_an_unavailable_device_waits_while_other_devices_go_on(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.device("d2")
    await kit.own("d1", "a@example.com")
    await kit.own("d2", "b@example.com")
    kit.sim.faults.add(status=503, times=2, path=f"{API_PREFIX}/customer")  # d1's first row, both attempts
    assert await kit.sync.drain() == 3
    pending = await kit.rows(status="PENDING")
    assert {r["aggregate_id"] for r in pending} == {"d1"} and len(pending) == 3
    assert pending[0]["attempts"] == 1 and "503" in pending[0]["last_error"]
    assert kit.sim.owners_of("d2") == {"b@example.com"} and kit.sim.owners_of("d1") == set()
    assert await kit.sync.drain() == 3
    assert kit.sim.owners_of("d1") == {"a@example.com"}


async def test_backoff_holds_a_device_until_it_is_due(kit):
    kit.settings.telemetron_backoff_base_s = 3600.0
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "a@example.com")
    kit.sim.faults.add(status=503, times=2, path=f"{API_PREFIX}/customer")
    assert await kit.sync.drain() == 0
    assert await kit.sync.drain() == 0 and kit.sim.hits("/customer/createOrUpdateCustomer") == 2
    assert (await kit.sync.status("acme"))["next_retry_at"] is not None
    # a waiting queue longer than a batch does not hide other devices behind the batch limit
    kit.settings.telemetron_batch_size = 2
    await kit.device("d2")
    await kit.own("d2", "b@example.com")
    assert await kit.sync.drain() == 2 and await kit.sync.drain() == 1
    assert kit.sim.owners_of("d2") == {"b@example.com"} and kit.sim.owners_of("d1") == set()
    assert [r["aggregate_id"] for r in await kit.rows(status="PENDING")] == ["d1"] * 3


async def test_a_refused_key_holds_that_tenant_only(kit):
    await kit.integrate("acme", api_key="wrong-key-0001")
    await kit.integrate("globex")
    await kit.device("d1", tenant="acme")
    await kit.device("g1", tenant="globex")
    await kit.own("d1", "a@example.com", tenant="acme")
    await kit.own("g1", "g@example.com", tenant="globex")
    assert await kit.sync.drain() == 3
    assert kit.sim.owners_of("g1") == {"g@example.com"} and kit.sim.owners_of("d1") == set()
    assert [r["attempts"] for r in await kit.rows("acme")] == [0, 0, 0]
    assert "API key refused" in (await kit.sync.status("acme"))["last_error"]
    assert await kit.sync.drain() == 0 and kit.sim.hits("/customer/createOrUpdateCustomer") == 2  # paused
    await kit.integrate("acme", api_key=DEMO_API_KEY)  # a new key lifts the pause
    assert await kit.sync.drain() == 3 and kit.sim.owners_of("d1") == {"a@example.com"}


async def test_a_disabled_integration_keeps_its_rows_until_enabled(kit):
    await kit.integrate(enabled=False)
    await kit.device("d1")
    await kit.own("d1", "a@example.com")
    assert await kit.sync.drain() == 0 and len(await kit.rows(status="PENDING")) == 3
    await kit.integrate(enabled=True)
    assert await kit.sync.drain() == 3


async def test_decommission_and_delete_end_ownership_and_unassign(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.device("d2")
    await kit.own("d1", "a@example.com", "b@example.com")
    await kit.own("d2", "a@example.com")
    await kit.sync.drain()
    await devices.decommission(kit.db, "acme", "d1")
    await devices.delete(kit.db, "acme", "d2")
    assert await kit.ops(status="PENDING") == [("d1", "upsert_device"), ("d1", "unassign"), ("d1", "unassign"),
                                               ("d2", "unassign")]
    await kit.sync.drain()
    assert kit.sim.assignments == set() and kit.sim.devices["d1"]["properties"]["status"] == "REVOKED"
    assert await owners.list_owners(kit.db, "acme", "d1") == []


async def test_configuring_the_integration_and_resync_queue_a_snapshot(kit):
    await kit.device("d1")
    await kit.device("d2")
    await kit.own("d1", "a@example.com")
    await kit.own("d2", "a@example.com", "b@example.com")
    await kit.integrate()  # owners set before the integration are queued when it is configured
    assert len(await kit.rows(status="PENDING")) == 7
    await kit.sync.drain()
    kit.sim.assignments.clear()  # e.g. someone unlinked them in Telemetron's dashboard
    assert await kit.sync.resync("acme") == 7
    await kit.sync.drain()  # waits for the drain resync started, then finds nothing left
    assert await kit.rows(status="PENDING") == []
    assert kit.sim.owners_of("d2") == {"a@example.com", "b@example.com"} and kit.sim.owners_of("d1") == {"a@example.com"}
    assert len(kit.sim.customers) == 2


async def test_removing_the_integration_drops_its_rows_and_id_map(kit):
    await kit.integrate()
    await kit.device("d1")
    await kit.own("d1", "a@example.com")
    await kit.sync.drain()
    await kit.own("d1", "b@example.com")
    await telemetron.delete_integration(kit.db, "acme")
    assert await kit.rows() == []
    [owner] = await owners.list_owners(kit.db, "acme", "d1")
    assert owner["email"] == "b@example.com"
    assert await telemetron.telemetron_customer_id(kit.db, "acme", owner["customer_id"]) is None
