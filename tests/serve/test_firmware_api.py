"""The firmware registry end to end: versions registered and listed over HTTP, images uploaded into the
blob store and downloaded by a device through a signed link without any token (docs/ota.md)."""
import hashlib
import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from pulse.domain.signed_links import signature

FIRMWARE = "/api/v1/customer/firmware"
OCTETS = {"Content-Type": "application/octet-stream"}
KEYS = {"id", "version", "description", "file_url", "file_size_bytes", "checksum_sha256", "device_type",
        "created_at", "created_by", "hosted"}
IMAGE = os.urandom(3000) + b"\x00" * 100  # firmware is binary: NUL bytes and all


async def register(api, **body) -> dict:
    r = await api.post(FIRMWARE, json={"version": "1.0.0", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def upload(api, firmware_id: int, content, headers=OCTETS, **kw):
    return await api.post(f"{FIRMWARE}/{firmware_id}/image", content=content,
                          headers={**api.headers(kw.pop("tenant", "acme")), **headers}, **kw)


def blobs(api) -> list[str]:
    """Every file (finished or not) under the blob store's firmware folder."""
    root = api.services.settings.data_dir / "blobs" / "firmware"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def signed_link(api, firmware_id: int) -> str:
    r = await api.get(f"{FIRMWARE}/{firmware_id}/download")
    assert r.status_code == 307, r.text
    return r.headers["location"]


async def test_register_list_and_get_versions(api):
    created = await register(api, version="1.2.0", description="stable", file_url="https://cdn.example/fw-1.2.0.bin",
                             file_size_bytes=1024, checksum_sha256="AB" * 32, device_type="sensor-v2")
    assert set(created) == KEYS
    assert created["checksum_sha256"] == "ab" * 32 and created["created_by"] == "customer_admin@acme"
    assert created["hosted"] is False and created["device_type"] == "sensor-v2"
    bare = await register(api, version="1.2.0")  # same version, any device type: a different entry
    assert bare["device_type"] is None and bare["file_url"] is None

    got = await api.get(f"{FIRMWARE}/{created['id']}")
    assert got.status_code == 200 and got.json() == created
    listing = (await api.get(FIRMWARE)).json()
    assert listing["total"] == 2 and [v["id"] for v in listing["firmware_versions"]] == [bare["id"], created["id"]]
    only = (await api.get(FIRMWARE, params={"device_type": "sensor-v2"})).json()
    assert only["total"] == 1 and only["firmware_versions"] == [created]


@pytest.mark.parametrize("first,second", [({"device_type": "gw"}, {"device_type": "gw"}),
                                          ({}, {}),
                                          ({"device_type": None}, {"device_type": ""})])
async def test_a_version_twice_for_the_same_device_type_is_409(api, first, second):
    await register(api, version="2.0", **first)
    r = await api.post(FIRMWARE, json={"version": "2.0", **second})
    assert r.status_code == 409 and r.json()["detail"] == "Firmware version already exists for this device type"
    assert (await api.post(FIRMWARE, json={"version": "2.0", "device_type": "other"})).status_code == 201
    assert (await api.post(FIRMWARE, json={"version": "2.0"}, tenant="globex")).status_code == 201  # per tenant


@pytest.mark.parametrize("body,field", [({}, "version"), ({"version": ""}, "version"),
                                        ({"version": "v" * 51}, "version"),
                                        ({"version": "1", "checksum_sha256": "xyz"}, "checksum_sha256"),
                                        ({"version": "1", "file_size_bytes": 0}, "file_size_bytes"),
                                        ({"version": "1", "device_type": "d" * 51}, "device_type"),
                                        ({"version": "1", "file_url": ""}, "file_url")])
async def test_invalid_bodies_are_422_naming_the_field(api, body, field):
    r = await api.post(FIRMWARE, json=body)
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), r.text


async def test_pages_count_every_match(api):
    for i in range(5):
        await register(api, version=f"1.0.{i}", device_type="gw" if i % 2 else None)
    first = (await api.get(FIRMWARE, params={"limit": 2})).json()
    assert first["total"] == 5 and [v["version"] for v in first["firmware_versions"]] == ["1.0.4", "1.0.3"]
    last = (await api.get(FIRMWARE, params={"limit": 2, "offset": 4})).json()
    assert last["total"] == 5 and [v["version"] for v in last["firmware_versions"]] == ["1.0.0"]
    gw = (await api.get(FIRMWARE, params={"device_type": "gw", "limit": 1})).json()
    assert gw["total"] == 2 and len(gw["firmware_versions"]) == 1
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}):
        assert (await api.get(FIRMWARE, params=bad)).status_code == 422


async def test_another_tenants_firmware_is_404_and_a_viewer_cannot_write(api):
    fw = await register(api)
    await upload(api, fw["id"], IMAGE)
    for path in ("", "/download"):
        r = await api.get(f"{FIRMWARE}/{fw['id']}{path}", tenant="globex")
        assert r.status_code == 404 and r.json()["detail"] == "Firmware version not found"
    assert (await upload(api, fw["id"], IMAGE, tenant="globex")).status_code == 404
    assert (await api.get(FIRMWARE, tenant="globex")).json()["total"] == 0
    assert (await api.get(f"{FIRMWARE}/999999")).status_code == 404

    assert (await api.get(f"{FIRMWARE}/{fw['id']}", role="customer_viewer")).status_code == 200
    r = await api.post(FIRMWARE, json={"version": "9"}, role="customer_viewer")
    assert r.status_code == 403 and "firmware.write" in r.json()["detail"]
    other = await register(api, version="2")
    r = await api.post(f"{FIRMWARE}/{other['id']}/image", content=IMAGE,
                       headers={**api.headers(role="customer_viewer"), **OCTETS})
    assert r.status_code == 403


async def test_an_upload_computes_the_checksum_and_a_device_downloads_it_without_a_token(api):
    fw = await register(api, version="3.1")
    r = await upload(api, fw["id"], IMAGE)
    assert r.status_code == 200, r.text
    hosted = r.json()
    assert hosted["checksum_sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert hosted["file_size_bytes"] == len(IMAGE) and hosted["hosted"] is True
    assert hosted["file_url"] == f"/api/v1/firmware-files/acme/{fw['id']}"
    assert (await api.get(f"{FIRMWARE}/{fw['id']}")).json() == hosted

    link = await signed_link(api, fw["id"])
    assert link.startswith(hosted["file_url"] + "?expires=")
    image = await api.client.get(link)  # no Authorization header: the signature is the credential
    assert image.status_code == 200 and image.content == IMAGE
    assert image.headers["content-type"] == "application/octet-stream"
    assert image.headers["content-length"] == str(len(IMAGE))

    again = await upload(api, fw["id"], b"another image")  # the hosted image never changes
    assert again.status_code == 409 and again.json()["detail"] == "Firmware image already uploaded"
    assert (await api.client.get(link)).content == IMAGE
    assert len(blobs(api)) == 1


async def test_an_upload_must_match_the_declared_checksum_and_size(api):
    good = await register(api, version="4.0", checksum_sha256=hashlib.sha256(IMAGE).hexdigest().upper(),
                          file_size_bytes=len(IMAGE))
    r = await upload(api, good["id"], IMAGE)
    assert r.status_code == 200 and r.json()["checksum_sha256"] == hashlib.sha256(IMAGE).hexdigest()

    wrong_sum = await register(api, version="4.1", checksum_sha256="0" * 64)
    r = await upload(api, wrong_sum["id"], IMAGE)
    assert r.status_code == 422 and r.json()["detail"].startswith("checksum_sha256:"), r.text
    wrong_size = await register(api, version="4.2", file_size_bytes=len(IMAGE) + 1)
    r = await upload(api, wrong_size["id"], IMAGE)
    assert r.status_code == 422 and r.json()["detail"].startswith("file_size_bytes:"), r.text
    empty = await upload(api, wrong_size["id"], b"")
    assert empty.status_code == 422 and empty.json()["detail"] == "Firmware image is empty"

    for refused in (wrong_sum, wrong_size):  # nothing kept: no image, no file, no link
        got = (await api.get(f"{FIRMWARE}/{refused['id']}")).json()
        assert got["hosted"] is False and got["file_url"] is None
        assert (await api.get(f"{FIRMWARE}/{refused['id']}/download")).status_code == 404
    assert len(blobs(api)) == 1
    # the refused version can still take the right image
    assert (await upload(api, wrong_sum["id"], b"x")).status_code == 422
    fixed = await register(api, version="4.3", checksum_sha256=hashlib.sha256(b"x").hexdigest())
    assert (await upload(api, fixed["id"], b"x")).status_code == 200


async def test_an_image_over_the_limit_is_413_and_leaves_nothing(api):
    api.services.settings.firmware_max_bytes = 1000
    fw = await register(api, version="5.0")
    r = await upload(api, fw["id"], b"a" * 1001)  # Content-Length says so: refused before reading
    assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]

    async def chunks():  # no Content-Length: refused while streaming
        for _ in range(3):
            yield b"b" * 400

    r = await upload(api, fw["id"], chunks())
    assert r.status_code == 413
    assert blobs(api) == [] and (await api.get(f"{FIRMWARE}/{fw['id']}")).json()["hosted"] is False
    r = await upload(api, fw["id"], b"c" * 1000)
    assert r.status_code == 200 and r.json()["file_size_bytes"] == 1000


async def test_an_image_sent_as_a_form_is_415(api):
    fw = await register(api)
    r = await api.post(f"{FIRMWARE}/{fw['id']}/image", files={"file": ("fw.bin", IMAGE)})
    assert r.status_code == 415 and "application/octet-stream" in r.json()["detail"]


async def test_expired_forged_and_misdirected_links_are_refused(api):
    a = await register(api, version="6.0")
    b = await register(api, version="6.1")
    for fw in (a, b):
        assert (await upload(api, fw["id"], IMAGE)).status_code == 200
    parts = urlsplit(await signed_link(api, a["id"]))
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    files = "/api/v1/firmware-files"
    assert (await api.client.get(parts.path, params=q)).status_code == 200
    for path, params in ((f"{files}/acme/{b['id']}", q), (f"{files}/globex/{a['id']}", q),
                         (parts.path, {**q, "expires": int(q["expires"]) + 1}),
                         (parts.path, {**q, "signature": "0" * 64})):
        r = await api.client.get(path, params=params)
        assert r.status_code == 403 and r.json()["detail"] == "Invalid or expired download link"
    assert (await api.client.get(parts.path)).status_code == 422  # no signature at all

    api.services.settings.firmware_link_ttl_s = 0  # a link that expires as it is made
    r = await api.client.get(await signed_link(api, a["id"]))
    assert r.status_code == 403
    late = int(time.time()) - 1
    stale = {"expires": late, "signature": signature(api.services.settings.resolved_download_url_secret(),
                                                     f"firmware/acme/{a['id']}", late)}
    assert (await api.client.get(parts.path, params=stale)).status_code == 403


async def test_a_signed_link_whose_image_is_gone_is_410(api):
    fw = await register(api)
    await upload(api, fw["id"], IMAGE)
    link = await signed_link(api, fw["id"])
    for name in blobs(api):
        (api.services.settings.data_dir / "blobs" / "firmware" / name).unlink()
    r = await api.client.get(link)
    assert r.status_code == 410 and r.json()["detail"] == "Firmware image is no longer available"


async def test_a_version_without_a_hosted_image_has_no_download(api):
    fw = await register(api, file_url="https://cdn.example/fw.bin")
    r = await api.get(f"{FIRMWARE}/{fw['id']}/download")
    assert r.status_code == 404 and r.json()["detail"] == "Firmware image not uploaded"


async def test_the_audit_trail_names_the_firmware_and_the_upload(api):
    fw = await register(api, version="7.0")
    await upload(api, fw["id"], IMAGE)
    events = (await api.get("/api/v1/customer/audit-log", params={"entity_type": "firmware"})).json()["events"]
    assert {(e["event_type"], e["entity_id"]) for e in events} == {("firmware.create", str(fw["id"])),
                                                                   ("firmware.image", str(fw["id"]))}
