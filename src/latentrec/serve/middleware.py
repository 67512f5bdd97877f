"""A small pure-ASGI guard: request bodies capped in size, requests in flight capped, security headers.

Pure ASGI (no ``BaseHTTPMiddleware``) so it adds microseconds, not milliseconds,
to each request. A body larger than ``max_body_bytes`` - announced by
``Content-Length`` or found while reading a chunked body - is answered with
``413`` and a JSON error before the application sees any of it. More than
``max_in_flight`` requests being handled at once are answered ``503`` with
``Retry-After``: the limit counts requests, not connections, so idle keep-alive
or slow-loris connections never lock other clients out (uvicorn's own
``limit_concurrency`` counts connections, which is why it is not used).
"""

from __future__ import annotations

import json

#: headers added to every response
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
#: the page loads only its own script, style and images (posters are proxied by the app)
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Refuse bodies over ``max_body_bytes`` (413), more than ``max_in_flight`` requests at once (503),
    and add :data:`SECURITY_HEADERS` (+ CSP on HTML)."""

    def __init__(self, app, max_body_bytes: int = 64 * 1024, max_in_flight: int = 256):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.max_in_flight = int(max_in_flight)
        self.in_flight = 0  # touched only on the event loop: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            body = json.dumps({"error": f"server busy: {self.in_flight} requests in progress; retry shortly",
                               "status": 503}).encode("utf-8")
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _guarded(self, scope, receive, send):
        limit = self.max_body_bytes
        too_large = {"error": f"request body too large: at most {limit} bytes are accepted", "status": 413}
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    await _send_json(send, 400, {"error": "invalid Content-Length header", "status": 400})
                    return
                if announced > limit:
                    await _send_json(send, 413, too_large)
                    return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # read the whole (bounded) body first, then replay it to the app
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    await self.app(scope, _replay([message], receive), send)
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await _send_json(send, 413, too_large)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            receive = _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                    headers.append((b"content-security-policy", CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _replay(messages: list, receive):
    queue = list(messages)

    async def replay():
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
