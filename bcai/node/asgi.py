"""A small ASGI application core for the node's API: a route table (which
also produces the OpenAPI document), JSON bodies with a size limit, bearer
tokens for write endpoints, and every error as JSON with a stable code.

    {"error": {"code": "api-not-found", "message": "no route for GET /v1/x"}}

Hand-written rather than a framework: the node needs a dozen routes, exact
control of limits and errors, and as few dependencies as possible.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from bcai.errors import BcaiError

log = logging.getLogger("bcai.api")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[["Request"], Awaitable[Any]]
WsHandler = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(BcaiError):
    """An error answered to the client: HTTP `status`, stable `code`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or ApiError(400, ``api-bad-json``)."""
        try:
            doc = json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ApiError(400, "api-bad-json", f"the body is not JSON: {err}") from err
        if not isinstance(doc, dict):
            raise ApiError(400, "api-bad-json", "the body must be a JSON object")
        return doc

    def query_int(self, name: str, default: int, lo: int, hi: int) -> int:
        text = self.query.get(name)
        if text is None:
            return default
        if not text.isdigit() or not lo <= int(text) <= hi:
            raise ApiError(400, "api-bad-param", f"{name} must be an integer in [{lo}, {hi}]")
        return int(text)


@dataclass
class Route:
    method: str
    path: str  # with {name} parameters
    handler: Handler
    summary: str
    write: bool = False
    status: int = 200
    tag: str = "node"
    response: str = "object"  # a name in the OpenAPI components, or "object"
    body: str | None = None  # request body schema name
    content_type: str = "application/json"
    max_body: int | None = None  # this route's body limit (None: the app's)
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        self.pattern = re.compile(f"^{regex}$")


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def send_response(
    send: Send, status: int, body: bytes, content_type: str = "application/json"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class App:
    """The ASGI callable. `token`: when set, write routes need
    ``Authorization: Bearer <token>``."""

    def __init__(
        self,
        routes: list[Route],
        *,
        websockets: dict[str, WsHandler] | None = None,
        token: str = "",
        max_body_bytes: int = 262_144,
    ) -> None:
        self.routes = routes
        self.websockets = websockets or {}
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        self.errors: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            handler = self.websockets.get(scope["path"])
            if handler is None:
                await send({"type": "websocket.close", "code": 4404})
                return
            await handler(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self.routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict()
            allowed.append(route.method)
        if allowed:
            raise ApiError(
                405, "api-method-not-allowed", f"{path} allows {', '.join(sorted(allowed))}"
            )
        raise ApiError(404, "api-not-found", f"no route for {method} {path}")

    async def _read_body(
        self, receive: Receive, headers: dict[str, str], limit: int | None = None
    ) -> bytes:
        limit = self.max_body_bytes if limit is None else limit
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "api-body-too-large", f"{declared} bytes > limit {limit}")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "api-disconnected", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "api-body-too-large", f"more than the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _authorize(self, headers: dict[str, str]) -> None:
        if not self.token:
            return
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        ):
            raise ApiError(
                401, "api-unauthorized", "this endpoint needs 'Authorization: Bearer <token>'"
            )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.requests += 1
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            route, params = self._match(scope["method"], scope["path"])
            if route.write:
                self._authorize(headers)
            body = (
                await self._read_body(receive, headers, route.max_body)
                if scope["method"] == "POST"
                else b""
            )
            query = _parse_query(scope.get("query_string", b""))
            request = Request(scope["method"], scope["path"], params, query, headers, body)
            result = await route.handler(request)
            if route.content_type == "application/json":
                payload = json.dumps(result, separators=(",", ":")).encode()
            else:
                payload = result if isinstance(result, bytes) else str(result).encode()
            await send_response(send, route.status, payload, route.content_type)
        except ApiError as err:
            self.errors[err.code] = self.errors.get(err.code, 0) + 1
            await send_response(send, err.status, _error_body(err.code, err.message))
        except Exception as err:  # one request's bug must not take the node down
            log.exception("API handler failed: %s %s", scope["method"], scope["path"])
            self.errors["api-internal"] = self.errors.get("api-internal", 0) + 1
            await send_response(
                send, 500, _error_body("api-internal", f"{type(err).__name__} (see the node log)")
            )


def _parse_query(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def openapi_document(
    routes: list[Route], schemas: dict[str, Any], info: dict[str, Any]
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of `routes`."""
    paths: dict[str, Any] = {}
    error_ref = {"$ref": "#/components/schemas/Error"}
    for r in routes:
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in re.findall(r"\{(\w+)\}", r.path)
        ]
        if r.content_type == "application/json":
            ok_schema: dict[str, Any] = (
                {"$ref": f"#/components/schemas/{r.response}"}
                if r.response in schemas
                else {"type": "object"}
            )
        else:
            ok_schema = {"type": "string"}
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": re.sub(r"\W+", "_", f"{r.method.lower()}{r.path}").strip("_"),
            "tags": [r.tag],
            "parameters": params,
            "responses": {
                str(r.status): {
                    "description": "success",
                    "content": {r.content_type: {"schema": ok_schema}},
                },
                "default": {
                    "description": "an error with a stable code",
                    "content": {"application/json": {"schema": error_ref}},
                },
            },
        }
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{r.body}"}}
                },
            }
        if r.write:
            op["security"] = [{"bearer": []}]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
