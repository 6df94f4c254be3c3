"""Bearer-token access control for ``python -m detector serve --token``."""

from __future__ import annotations

import hashlib
import hmac

from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = frozenset({"/health"})
"""Load balancers and orchestrators probe /health without credentials."""


class BearerAuth:
    """Requires the token on every path but /health (pure ASGI, so streams pass untouched).

    Browsers cannot put a header on ``<img src>`` or ``EventSource``: a
    ``?token=`` query is accepted too, and answered with an HttpOnly,
    SameSite=Strict cookie so the page's own requests (and /docs) carry it.
    """

    cookie = "maskdet_token"

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()
        self.cookie_value = hashlib.sha256(b"maskdet-cookie:" + self.token).hexdigest()  # never the token itself

    def _ok(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(supplied.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        cookie = request.cookies.get(self.cookie, "")
        if self._ok(bearer) or hmac.compare_digest(cookie.encode(), self.cookie_value.encode()):
            return await self.app(scope, receive, send)
        if not self._ok(request.query_params.get("token")):
            response = JSONResponse({"error": "missing or wrong token: send 'Authorization: Bearer <token>'"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        set_cookie = f"{self.cookie}={self.cookie_value}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
