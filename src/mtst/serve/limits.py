"""Request-body guards that answer in the API's JSON error format: a size limit, and strict UTF-8 JSON.

Starlette's built-in limit (FastAPI's `max_body_size`) replies to a body whose Content-Length is already too
large with a plain-text 413; clients of this API read `{"detail": ...}` from every refusal.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"request body larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await JSONResponse({"detail": self.detail}, status_code=413)(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # a chunked body, or one longer than it declared
                raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counting_receive, send)


class StrictJsonBody:
    """Reads the whole body (BodySizeLimit, outside, bounds it) and refuses with 400 what a JSON parser would
    take silently or name vaguely; the app then reads the body as it came.

    - a compressed body (`Content-Encoding: gzip`): not decompressed, so it is refused by name;
    - UTF-16 and UTF-32, which `json.loads` on bytes would accept (it guesses the encoding): both always hold a
      NUL byte (every ASCII character of the JSON has one) or start with a UTF-16 byte-order mark; valid UTF-8
      JSON never holds a raw NUL;
    - any other invalid UTF-8, naming the byte and its offset;
    - a key given twice in one object (`{"texts": ["a"], "texts": ["b"]}`), of which a parser keeps the last.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        encoding = Headers(scope=scope).get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            detail = f"the body is compressed (Content-Encoding: {encoding}); send it uncompressed"
            return await JSONResponse({"detail": detail}, status_code=415)(scope, receive, send)
        try:
            body = await _whole_body(receive)
        except HTTPException as error:  # BodySizeLimit's refusal, raised while the body is read
            return await JSONResponse({"detail": error.detail}, status_code=error.status_code)(scope, receive, send)
        if body is not None and (problem := body_problem(body)):
            return await JSONResponse({"detail": problem}, status_code=400)(scope, receive, send)
        await self.app(scope, _replaying(body, receive), send)


async def _whole_body(receive: Receive) -> bytes | None:
    """The request body, or None when the client left before sending all of it."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


def _replaying(body: bytes | None, receive: Receive) -> Receive:
    """A receive that gives the body once, then what the client does next (the app learns of a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}] if body is not None else []

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def body_problem(body: bytes) -> str | None:
    """Why a request body is refused before it is parsed, or None."""
    if body[:2] == b"\x1f\x8b":
        return "the body looks gzip-compressed; send JSON uncompressed, encoded as UTF-8"
    if b"\x00" in body or body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "the body is not UTF-8 (it looks like UTF-16 or UTF-32); send JSON encoded as UTF-8"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"the body is not UTF-8: byte 0x{body[error.start]:02x} at offset {error.start}; send UTF-8"
    return _duplicate_key(text)


def _duplicate_key(text: str) -> str | None:
    repeated: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict:
        keys = [key for key, _ in items]
        repeated.extend(key for index, key in enumerate(keys) if key in keys[:index])
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):  # malformed or too deep: FastAPI's parser says so in its own words
        return None
    return f"malformed JSON: the key {json.dumps(repeated[0])} is given twice in one object" if repeated else None
