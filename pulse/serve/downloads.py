"""What every signed-link route shares (export files, firmware images): the link's query parameters,
and the response that streams the blob block by block, so a large file never sits in memory."""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator

from fastapi import Query
from fastapi.responses import StreamingResponse

from pulse.services.downloads import DownloadFile

READ_BLOCK = 1 << 20


@dataclass
class SignedLink:
    expires: int  # Unix seconds
    signature: str


def signed_link(expires: int = Query(ge=0, le=2**62),
                signature: str = Query(pattern="^[0-9a-f]{64}$")) -> SignedLink:
    return SignedLink(expires, signature)


def file_response(f: DownloadFile) -> StreamingResponse:
    return StreamingResponse(_blocks(f.file), media_type=f.media_type, headers={
        "Content-Disposition": f'attachment; filename="{f.filename}"', "Content-Length": str(f.size)})


def _blocks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while block := file.read(READ_BLOCK):
            yield block
