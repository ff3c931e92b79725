"""The firmware registry of OTA updates (docs/ota.md): versions a tenant registers, and images Pulse
hosts for them.

- A version names its image by `file_url` (anywhere), or gets one by uploading the image: the bytes
  stream into the blob store under a limit (`firmware_max_bytes`), hashed on the way; a declared
  checksum or size must match, else nothing is kept. A version's hosted image never changes (a
  campaign may be sending it), so a second upload is a conflict.
- A hosted image is read through a signed link (`signed_image_url`): short-lived, no user token, so
  a device can fetch it; users get one from `download_link`.
"""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Mapping

from pulse.config.settings import Settings
from pulse.domain.urls import public_url
from pulse.errors import Conflict, Gone, Invalid, NotFound, PulseError, TooLarge
from pulse.services.context import ServiceContext
from pulse.services.downloads import DownloadFile, check_link, signed_url
from pulse.storage import firmware as store
from pulse.storage.blobs import BlobStore, blob_store
from pulse.storage.db import utcnow

FILE_PATH = "/api/v1/firmware-files/{tenant_id}/{firmware_id}"  # the signed link's route
MEDIA_TYPE = "application/octet-stream"


async def list_versions(ctx: ServiceContext, tenant_id: str, device_type: str | None, limit: int,
                        offset: int) -> tuple[list[dict[str, Any]], int]:
    return await store.list_versions(ctx.db, tenant_id, device_type, limit, offset)


async def get(ctx: ServiceContext, tenant_id: str, firmware_id: int) -> dict[str, Any]:
    return await store.get(ctx.db, tenant_id, firmware_id)


async def create(ctx: ServiceContext, tenant_id: str, fields: Mapping[str, Any], created_by: str) -> dict[str, Any]:
    return await store.create(ctx.db, tenant_id, fields, created_by, utcnow())


# ---- hosted images ----------------------------------------------------------------------------------
def _resource(tenant_id: str, firmware_id: int) -> str:
    return f"firmware/{tenant_id}/{firmware_id}"


def _file_path(tenant_id: str, firmware_id: int) -> str:
    return FILE_PATH.format(tenant_id=tenant_id, firmware_id=firmware_id)


async def upload_image(ctx: ServiceContext, tenant_id: str, firmware_id: int, chunks: AsyncIterator[bytes],
                       declared_size: int | None) -> dict[str, Any]:
    """Host the image of a version that has none; `declared_size` (the Content-Length) lets an image
    over the limit be refused before any byte is read."""
    version = await store.get(ctx.db, tenant_id, firmware_id)
    if version["hosted"]:
        raise Conflict("Firmware image already uploaded")
    limit = ctx.settings.firmware_max_bytes
    if declared_size is not None and declared_size > limit:
        raise _too_large(limit)
    blobs = blob_store(ctx.settings)
    # a key of its own per upload: a concurrent upload of the same version cannot overwrite this one
    key = f"{_resource(tenant_id, firmware_id)}-{secrets.token_hex(6)}.bin"
    size, sha256 = await _receive(blobs, key, chunks, limit)
    try:
        _check_image(version, size, sha256)
        return await store.attach_image(ctx.db, tenant_id, firmware_id, key, size, sha256,
                                        public_url(ctx.settings.public_base_url, _file_path(tenant_id, firmware_id)))
    except PulseError:  # refused: nothing is kept
        await asyncio.to_thread(blobs.delete, key)
        raise


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"Firmware image is larger than the limit of {limit} bytes")


async def _receive(blobs: BlobStore, key: str, chunks: AsyncIterator[bytes], limit: int) -> tuple[int, str]:
    """Write the chunks into blob `key`, hashing them; (size, hex SHA-256). Over `limit` the write is
    abandoned (the blob store keeps nothing of it)."""
    digest, size = hashlib.sha256(), 0
    with blobs.writer(key) as out:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def _check_image(version: dict[str, Any], size: int, sha256: str) -> None:
    """Invalid (422) when the image is empty or differs from the checksum or size the version declares."""
    if size == 0:
        raise Invalid("Firmware image is empty")
    declared = version["checksum_sha256"]
    if declared is not None and declared.lower() != sha256:
        raise Invalid(f"checksum_sha256: the image's SHA-256 is {sha256}, the version declares {declared}")
    if version["file_size_bytes"] is not None and version["file_size_bytes"] != size:
        raise Invalid(f"file_size_bytes: the image has {size} bytes, the version declares {version['file_size_bytes']}")


def signed_image_url(settings: Settings, tenant_id: str, firmware_id: int, now: float) -> str:
    """A link to the hosted image that works without a user token for `firmware_link_ttl_s`."""
    return signed_url(settings, _resource(tenant_id, firmware_id), _file_path(tenant_id, firmware_id),
                      int(now) + settings.firmware_link_ttl_s)


async def download_link(ctx: ServiceContext, tenant_id: str, firmware_id: int) -> str:
    """A signed link to the version's hosted image; 404 when Pulse does not host it."""
    version = await store.get(ctx.db, tenant_id, firmware_id)
    if not version["hosted"]:
        raise NotFound("Firmware image not uploaded")
    return signed_image_url(ctx.settings, tenant_id, firmware_id, time.time())


async def open_signed(ctx: ServiceContext, tenant_id: str, firmware_id: int, expires: int,
                      given: str) -> DownloadFile:
    """The image a signed link names; 403 when the signature is wrong or the link expired."""
    check_link(ctx.settings, _resource(tenant_id, firmware_id), expires, given)
    version = await store.get(ctx.db, tenant_id, firmware_id)
    try:
        file = blob_store(ctx.settings).open(version["blob_key"]) if version["hosted"] else None
    except FileNotFoundError:
        file = None
    if file is None:
        raise Gone("Firmware image is no longer available")
    return DownloadFile(file, version["file_size_bytes"], f"firmware-{firmware_id}.bin", MEDIA_TYPE)
