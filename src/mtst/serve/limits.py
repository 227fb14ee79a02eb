"""Request-body guards that answer in the API's JSON error format: a size limit, and UTF-8 only.

Starlette's built-in limit (FastAPI's `max_body_size`) replies to a body whose Content-Length is already too
large with a plain-text 413; clients of this API read `{"detail": ...}` from every refusal.
"""

from __future__ import annotations

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


class RequireUtf8:
    """Refuses UTF-16 and UTF-32 bodies, which `json.loads` on bytes would silently accept (it guesses the
    encoding). Both always hold a NUL byte (every ASCII character of the JSON has one) or start with a UTF-16
    byte-order mark; valid UTF-8 JSON never holds a raw NUL. Other invalid UTF-8 is refused by the parser."""

    DETAIL = "the body is not UTF-8 (it looks like UTF-16 or UTF-32); send JSON encoded as UTF-8"

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        first = True

        async def checking_receive() -> Message:
            nonlocal first
            message = await receive()
            body = message.get("body", b"")
            if b"\x00" in body or (first and body[:2] in (b"\xff\xfe", b"\xfe\xff")):
                raise HTTPException(400, self.DETAIL)
            first = first and not body
            return message

        await self.app(scope, checking_receive, send)
