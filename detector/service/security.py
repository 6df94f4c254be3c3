"""What a browser may do with the service: which Host names it answers, and the headers that fence its page.

A service bound to 127.0.0.1 is still reachable from any web page the user
opens, through DNS rebinding: ``evil.example`` resolves to 127.0.0.1 after the
page has loaded, and its script reads ``/stream`` and ``/stats`` as a
same-origin request. The ``Host`` header gives it away, so only the names the
server was bound for are answered (Starlette's ``TrustedHostMiddleware``).
The page and its API are also kept out of frames and from running script
that the service did not send itself.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import socket

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DOCS_PATHS = ("/docs", "/redoc")
"""FastAPI's documentation pages start Swagger UI from an inline script of their own."""


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bound: str, extra: list[str]) -> list[str]:
    """The Host names the service answers: the address it was bound to and this machine's own names.

    A wildcard bind (0.0.0.0) answers this machine's name and addresses; a proxy
    or a DNS name in front of it is named with ``--allowed-host``.
    """
    names = {*LOOPBACK_NAMES, *(h.lower() for h in extra)}
    if bound not in WILDCARD_HOSTS:
        names.add(bound.lower())
        return sorted(names)
    hostname = socket.gethostname()
    names.update({hostname.lower(), socket.getfqdn().lower()})
    try:
        names.update(info[4][0] for info in socket.getaddrinfo(hostname, None))
    except OSError:  # a machine whose own name does not resolve
        pass
    return sorted(names)


def inline_hashes(html: str, tag: str) -> list[str]:
    """CSP sources (``'sha256-...'``) for each inline ``<tag>`` block of a page, so exactly those may run."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks]


def page_policy(html: str) -> str:
    """A Content-Security-Policy for the service's own page: its inline script and style, nothing from elsewhere."""
    scripts, styles = " ".join(inline_hashes(html, "script")), " ".join(inline_hashes(html, "style"))
    return ("default-src 'self'; "
            f"script-src 'self' {scripts}; style-src 'self' {styles}; "
            "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Adds the fencing headers to every HTTP response (pure ASGI, so streams pass untouched)."""

    def __init__(self, app: ASGIApp, page_csp: str) -> None:
        self.app = app
        common = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", b"no-referrer")]
        self.headers = [*common, (b"content-security-policy", page_csp.encode())]
        self.docs_headers = [*common, (b"content-security-policy", DOCS_POLICY.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self.docs_headers if scope["path"].startswith(DOCS_PATHS) else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
