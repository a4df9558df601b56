"""An order service on Starlette and uvicorn, with ONE ``AsyncEventDBXClient`` for the whole app.

The client is created and connected in the app's lifespan (so a wrong address or token stops
start-up instead of failing the first request), shared by every request — it pools and
pipelines, so concurrent requests do not wait for each other — and closed at shutdown.

    EVENTDBX_HOST=127.0.0.1 EVENTDBX_PORT=6363 EVENTDBX_TOKEN=… EVENTDBX_TENANT_ID=shop \\
        uvicorn --app-dir crates/edbx-py/examples asgi_orders:app

Routes:

    POST /orders                  {"order_id": "o-1", "payload": {...}}   create (409 if it exists)
    POST /orders/{id}/events      {"event_type": "order.paid", "payload": {...}}   append
    GET  /orders/{id}             the aggregate (404 if there is none)
    GET  /healthz                 200 once the client is connected

Failures map to HTTP statuses (``status_for`` below): 400 bad input, 404 no such order, 409
conflict, 503 EventDBX unreachable (safe to retry), 504 timeout, and for a write whose reply was
lost 504 with ``"outcome": "unknown"`` — it may or may not have been applied, so it is never
reported as a success; read the order back before retrying. ``ORDERS_READ_TIMEOUT`` (seconds)
sets the client's per-call deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, AsyncIterator, Dict, Tuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eventdbx import (
    AsyncEventDBXClient,
    EventDBXAPIError,
    EventDBXConnectionError,
    EventDBXError,
    EventDBXInputError,
    EventDBXOutcomeUnknownError,
    EventDBXTimeoutError,
)

AGGREGATE_TYPE = "orders"


class BadRequest(Exception):
    """The request body is not what the route takes."""


def status_for(error: EventDBXError) -> Tuple[int, Dict[str, Any]]:
    """The HTTP status and JSON body for a failed EventDBX call."""
    # First: an unknown outcome may also be a timeout, and must never read as "try again".
    if isinstance(error, EventDBXOutcomeUnknownError):
        return 504, {
            "error": "outcome_unknown",
            "outcome": "unknown",
            "detail": "the write was sent but its reply was lost: it may or may not have been "
            "applied; read the order back before retrying",
        }
    if isinstance(error, EventDBXInputError):
        return 400, {"error": "bad_request", "detail": str(error)}
    if isinstance(error, EventDBXAPIError):
        if error.code == "aggregate_not_found":
            return 404, {"error": "not_found", "detail": error.message}
        if error.code == "invalid_schema":
            return 400, {"error": "bad_request", "detail": error.message}
        if error.code in ("schema_violation", "aggregate_archived"):
            return 409, {"error": "conflict", "detail": error.message}
        # A refused token or a storage failure is the service's problem, not the caller's.
        return 502, {"error": "upstream", "code": error.code, "detail": error.message}
    if isinstance(error, EventDBXTimeoutError):
        return 504, {"error": "timeout", "detail": str(error)}
    if isinstance(error, EventDBXConnectionError):
        return 503, {"error": "unavailable", "detail": str(error), "retryable": error.retryable}
    return 502, {"error": "upstream", "detail": str(error)}


async def json_object(request: Request, *required: str) -> Dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    for key in required:
        if key not in body:
            raise BadRequest(f"the body lacks {key!r}")
    if not isinstance(body.get("payload", {}), dict):
        raise BadRequest("'payload' must be a JSON object")
    return body


def written(echo: Any) -> Any:
    """The server's echo of a write, decoded (``None`` when it runs without echoes)."""
    return json.loads(echo) if isinstance(echo, str) else None


async def create_order(request: Request) -> JSONResponse:
    body = await json_object(request, "order_id", "payload")
    echo = await request.app.state.eventdbx.create(
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=str(body["order_id"]),
        event_type="order.created",
        payload_json=json.dumps(body["payload"]),
    )
    return JSONResponse({"order_id": body["order_id"], "event": written(echo)}, status_code=201)


async def append_event(request: Request) -> JSONResponse:
    order_id = request.path_params["order_id"]
    body = await json_object(request, "event_type", "payload")
    echo = await request.app.state.eventdbx.apply(
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=order_id,
        event_type=str(body["event_type"]),
        payload_json=json.dumps(body["payload"]),
    )
    return JSONResponse({"order_id": order_id, "event": written(echo)}, status_code=201)


async def get_order(request: Request) -> JSONResponse:
    order_id = request.path_params["order_id"]
    result = await request.app.state.eventdbx.get(
        aggregate_type=AGGREGATE_TYPE, aggregate_id=order_id
    )
    if not result.found:
        return JSONResponse({"error": "not_found", "order_id": order_id}, status_code=404)
    return JSONResponse(result.aggregate)


async def healthz(request: Request) -> JSONResponse:
    connected = request.app.state.eventdbx.connected
    return JSONResponse({"connected": connected}, status_code=200 if connected else 503)


async def eventdbx_failed(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EventDBXError)
    status, body = status_for(error)
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def bad_request(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"error": "bad_request", "detail": str(error)}, status_code=400)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    client = AsyncEventDBXClient.from_env(
        read_timeout=float(os.environ.get("ORDERS_READ_TIMEOUT", "15"))
    )
    await client.connect()  # a wrong address or token fails start-up, not the first request
    app.state.eventdbx = client
    try:
        yield
    finally:
        await client.close()


app = Starlette(
    routes=[
        Route("/orders", create_order, methods=["POST"]),
        Route("/orders/{order_id}/events", append_event, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    exception_handlers={EventDBXError: eventdbx_failed, BadRequest: bad_request},
    lifespan=lifespan,
)
