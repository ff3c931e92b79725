"""Signed downloads, shared by the areas that serve a blob without a user token (export files,
firmware images): the link under the server's secret and public address, its check, and the opened
file a route streams. The signing itself is `pulse.domain.signed_links`."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import BinaryIO

from pulse.config.settings import Settings
from pulse.domain.signed_links import check, signed_path
from pulse.domain.urls import public_url


@dataclass
class DownloadFile:
    """An opened blob as a download serves it: the open file, its size, a file name and media type."""

    file: BinaryIO
    size: int
    filename: str
    media_type: str


def signed_url(settings: Settings, resource: str, path: str, expires: int) -> str:
    """A link to `path` (which serves `resource`) that works without a token until `expires` (Unix s)."""
    return public_url(settings.public_base_url,
                      signed_path(settings.resolved_download_url_secret(), resource, path, expires))


def check_link(settings: Settings, resource: str, expires: int, given: str) -> None:
    """Forbidden (403) unless the link to `resource` is signed right and has not expired."""
    check(settings.resolved_download_url_secret(), resource, expires, given, time.time())
