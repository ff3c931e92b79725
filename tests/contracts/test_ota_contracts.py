"""The OTA routes against the documented contract (shared/reference/api-contracts.md §2 "OTA Firmware"):
documented bodies in, documented statuses and keys out. Pulse's extras (one version, the hosted image,
its signed link) are checked here too; campaigns are later work."""
from __future__ import annotations

import pytest

from pulse.serve.routes import firmware
from tests.contracts.helpers import answers, assert_accounted_for, has_keys

FIRMWARE = "/api/v1/customer/firmware"
ITEM_KEYS = ("id", "version", "description", "file_url", "file_size_bytes", "checksum_sha256", "device_type",
             "created_at", "created_by")
CHECKED = {("GET", FIRMWARE), ("POST", FIRMWARE), ("GET", FIRMWARE + "/{firmware_id}"),
           ("POST", FIRMWARE + "/{firmware_id}/image"), ("GET", FIRMWARE + "/{firmware_id}/download"),
           ("GET", "/api/v1/firmware-files/{tenant_id}/{firmware_id}")}
NOT_MET = {
    ("GET", FIRMWARE): "met except: `total` counts every version the filter matches (documented: the page length)",
    ("POST", FIRMWARE): "met except: `file_url` may be left out (an uploaded image sets it) and `checksum_sha256` "
                        "must be 64 hex digits (documented: any text up to 64), so an upload can be checked",
}


def test_every_firmware_route_is_checked_or_says_why_not():
    assert_accounted_for([firmware.router], CHECKED, NOT_MET)


@pytest.mark.parametrize("route", sorted(NOT_MET), ids=" ".join)
def test_documented_but_not_met(route):
    pytest.skip(NOT_MET[route])


async def test_documented_bodies_statuses_and_keys(api):
    body = {"version": "1.0.0", "description": "first", "file_url": "https://cdn.example/fw.bin",
            "file_size_bytes": 4, "checksum_sha256": "a" * 64, "device_type": "gateway"}
    created = answers(await api.post(FIRMWARE, json=body), 201, ITEM_KEYS)
    assert {k: created[k] for k in body} == body
    r = await api.post(FIRMWARE, json=body)
    assert r.status_code == 409 and r.json()["detail"] == "Firmware version already exists for this device type"
    listing = answers(await api.get(FIRMWARE, params={"device_type": "gateway", "limit": 50, "offset": 0}), 200,
                      ("firmware_versions", "total"))
    has_keys(listing["firmware_versions"][0], ITEM_KEYS)
    answers(await api.get(f"{FIRMWARE}/{created['id']}"), 200, ITEM_KEYS)
    r = await api.get(f"{FIRMWARE}/{created['id'] + 1}")
    assert r.status_code == 404 and r.json()["detail"] == "Firmware version not found"


async def test_pulse_hosted_image_and_its_signed_link(api):
    version = answers(await api.post(FIRMWARE, json={"version": "2.0.0"}), 201, ITEM_KEYS)
    r = await api.post(f"{FIRMWARE}/{version['id']}/image", content=b"\x7fELF\x00fw",
                       headers={**api.headers(), "Content-Type": "application/octet-stream"})
    hosted = answers(r, 200, ITEM_KEYS)
    assert hosted["file_url"] == f"/api/v1/firmware-files/acme/{version['id']}" and hosted["file_size_bytes"] == 7
    link = await api.get(f"{FIRMWARE}/{version['id']}/download")
    assert link.status_code == 307
    image = await api.client.get(link.headers["location"])
    assert image.status_code == 200 and image.content == b"\x7fELF\x00fw"
