"""A tiny real tus 1.0.0 server (aiohttp) speaking the cloud's upload contract, for uploader tests.

It keeps bytes as they arrive, so a connection cut mid-PATCH leaves a partial upload to resume,
and it can be told to cut the link, answer 5xx, or quarantine, to exercise the client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Upload:
    length: int
    meta: dict[str, str]
    vehicle: str
    data: bytearray = field(default_factory=bytearray)


@dataclass
class TusState:
    tokens: dict[str, str]
    uploads: dict[str, Upload] = field(default_factory=dict)
    stored: dict[tuple[str, str], bytes] = field(default_factory=dict)
    patch_bytes_received: int = 0
    patches: int = 0
    posts: int = 0
    cut_after_bytes: list[int] = field(default_factory=list)  # one entry per cut still to do
    fail_statuses: list[int] = field(default_factory=list)    # answered to the next PATCHes
    quarantine: bool = False
    corrupt_next_final: int = 0
    piece_delay_s: float = 0.0                                # a slow link: sleep per 8 KiB received
    in_patch: int = 0                                         # PATCH requests being received now
    completed: list[str] = field(default_factory=list)        # sha256 of each upload stored


def _meta(header: str) -> dict[str, str]:
    out = {}
    for pair in filter(None, header.split(",")):
        key, _, value = pair.strip().partition(" ")
        out[key] = base64.b64decode(value).decode()
    return out


def make_app(state: TusState) -> web.Application:
    def auth(request: web.Request) -> str:
        if request.headers.get("Tus-Resumable") != "1.0.0":
            raise web.HTTPPreconditionFailed()
        vehicle = request.headers.get("X-Avdata-Vehicle", "")
        if request.headers.get("Authorization") != f"Bearer {state.tokens.get(vehicle, '-')}":
            raise web.HTTPUnauthorized(text=json.dumps({"error": "unauthorized"}))
        return vehicle

    async def create(request: web.Request) -> web.Response:
        vehicle = auth(request)
        state.posts += 1
        length = int(request.headers["Upload-Length"])
        meta = _meta(request.headers.get("Upload-Metadata", ""))
        if (vehicle, meta["sha256"]) in state.stored:
            return web.Response(status=201, headers={"Upload-Offset": str(length), "X-Avdata-Duplicate": "1",
                                                     "Tus-Resumable": "1.0.0"})
        uid = uuid.uuid4().hex
        state.uploads[uid] = Upload(length, meta, vehicle)
        return web.Response(status=201, headers={"Location": f"/files/{uid}", "Upload-Offset": "0",
                                                 "Tus-Resumable": "1.0.0"})

    async def head(request: web.Request) -> web.Response:
        auth(request)
        up = state.uploads.get(request.match_info["uid"])
        if up is None:
            raise web.HTTPNotFound()
        return web.Response(status=200, headers={"Upload-Offset": str(len(up.data)),
                                                 "Upload-Length": str(up.length), "Cache-Control": "no-store"})

    async def patch(request: web.Request) -> web.StreamResponse:
        auth(request)
        state.patches += 1
        up = state.uploads.get(request.match_info["uid"])
        if up is None:
            raise web.HTTPNotFound()
        if int(request.headers["Upload-Offset"]) != len(up.data):
            raise web.HTTPConflict()
        if state.fail_statuses:
            await request.read()
            return web.Response(status=state.fail_statuses.pop(0))
        state.in_patch += 1
        try:
            return await receive(request, up)
        finally:
            state.in_patch -= 1

    async def receive(request: web.Request, up: Upload) -> web.StreamResponse:
        async for piece in request.content.iter_chunked(8192):
            if state.piece_delay_s:
                await asyncio.sleep(state.piece_delay_s)
            state.patch_bytes_received += len(piece)
            if state.cut_after_bytes and state.patch_bytes_received >= state.cut_after_bytes[0]:
                state.cut_after_bytes.pop(0)
                up.data += piece
                assert request.transport is not None
                request.transport.close()
                raise ConnectionResetError("link cut by the test")
            up.data += piece
        headers = {"Upload-Offset": str(len(up.data)), "Tus-Resumable": "1.0.0"}
        if len(up.data) < up.length:
            return web.Response(status=204, headers=headers)
        del state.uploads[request.match_info["uid"]]
        if state.corrupt_next_final:
            state.corrupt_next_final -= 1
            return web.Response(status=460, text="checksum mismatch")
        if hashlib.sha256(up.data).hexdigest() != up.meta["sha256"]:
            return web.Response(status=460, text="checksum mismatch")
        if state.quarantine:
            return web.json_response({"error": "quarantined", "reason": "mcap_crc", "detail": "bad chunk"},
                                     status=422)
        state.stored[(up.vehicle, up.meta["sha256"])] = bytes(up.data)
        state.completed.append(up.meta["sha256"])
        return web.Response(status=204, headers={**headers, "X-Avdata-Segments": "seg-a,seg-b"})

    app = web.Application()
    app.router.add_post("/files/", create)
    app.router.add_route("HEAD", "/files/{uid}", head)
    app.router.add_patch("/files/{uid}", patch)
    return app
