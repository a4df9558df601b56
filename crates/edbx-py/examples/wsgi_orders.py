"""An order service as a plain WSGI app under gunicorn, with ONE blocking ``EventDBXClient``
created at import time.

Creating the client at module level is what most WSGI code does, and it has to survive
``gunicorn --preload``: the app is imported once in the master process, which then forks its
workers, and every worker uses the client it inherited.

    EVENTDBX_HOST=127.0.0.1 EVENTDBX_PORT=6363 EVENTDBX_TOKEN=… EVENTDBX_TENANT_ID=shop \\
        gunicorn --preload -w 4 --chdir crates/edbx-py/examples wsgi_orders:app

Routes and statuses are those of ``asgi_orders.py``:

    POST /orders                  {"order_id": "o-1", "payload": {...}}   create (409 if it exists)
    POST /orders/{id}/events      {"event_type": "order.paid", "payload": {...}}   append
    GET  /orders/{id}             the aggregate (404 if there is none)
    GET  /healthz                 200 when the app is loaded

400 bad input, 404 no such order, 409 conflict, 503 EventDBX unreachable (safe to retry), 504
timeout, and for a write whose reply was lost 504 with ``"outcome": "unknown"`` — never a success.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from eventdbx import (
    EventDBXAPIError,
    EventDBXClient,
    EventDBXConnectionError,
    EventDBXError,
    EventDBXHandshakeError,
    EventDBXInputError,
    EventDBXOutcomeUnknownError,
    EventDBXTimeoutError,
)

AGGREGATE_TYPE = "orders"



def connect() -> EventDBXClient:
    return EventDBXClient.from_env(read_timeout=float(os.environ.get("ORDERS_READ_TIMEOUT", "15")))


# Connects now, so that a refused token fails the import (and gunicorn's start-up). An
# unreachable server does not: a worker that gunicorn starts during an outage (one recycled by
# --max-requests, or replacing one that died) would fail to boot, and gunicorn stops every
# worker when one does. Such a worker starts anyway, answers 503 while EventDBX is down, and
# connects on the first request that finds it back. Once made, a client rides out outages.
_client: Optional[EventDBXClient]
try:
    _client = connect()
except EventDBXHandshakeError:
    raise
except EventDBXConnectionError:
    _client = None
_connecting = threading.Lock()


def client() -> EventDBXClient:
    """The worker's client; made now if EventDBX was unreachable at import (raises
    EventDBXConnectionError, a 503, while it still is)."""
    global _client
    if _client is None:
        with _connecting:
            if _client is None:
                _client = connect()
    return _client


class HTTPError(Exception):
    def __init__(self, status: int, body: Dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


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
        return 502, {"error": "upstream", "code": error.code, "detail": error.message}
    if isinstance(error, EventDBXTimeoutError):
        return 504, {"error": "timeout", "detail": str(error)}
    if isinstance(error, EventDBXConnectionError):
        return 503, {"error": "unavailable", "detail": str(error), "retryable": error.retryable}
    return 502, {"error": "upstream", "detail": str(error)}


def json_object(environ: Dict[str, Any], *required: str) -> Dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"null")
    except ValueError:
        raise HTTPError(400, {"error": "bad_request", "detail": "the body must be JSON"}) from None
    if not isinstance(body, dict):
        raise HTTPError(400, {"error": "bad_request", "detail": "the body must be a JSON object"})
    for key in required:
        if key not in body:
            raise HTTPError(400, {"error": "bad_request", "detail": f"the body lacks {key!r}"})
    if not isinstance(body.get("payload", {}), dict):
        raise HTTPError(400, {"error": "bad_request", "detail": "'payload' must be a JSON object"})
    return body


def written(echo: Any) -> Any:
    """The server's echo of a write, decoded (``None`` when it runs without echoes)."""
    return json.loads(echo) if isinstance(echo, str) else None


def create_order(environ: Dict[str, Any]) -> Tuple[int, Any]:
    body = json_object(environ, "order_id", "payload")
    echo = client().create(
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=str(body["order_id"]),
        event_type="order.created",
        payload_json=json.dumps(body["payload"]),
    )
    return 201, {"order_id": body["order_id"], "event": written(echo)}


def append_event(environ: Dict[str, Any], order_id: str) -> Tuple[int, Any]:
    body = json_object(environ, "event_type", "payload")
    echo = client().apply(
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=order_id,
        event_type=str(body["event_type"]),
        payload_json=json.dumps(body["payload"]),
    )
    return 201, {"order_id": order_id, "event": written(echo)}


def get_order(environ: Dict[str, Any], order_id: str) -> Tuple[int, Any]:
    result = client().get(aggregate_type=AGGREGATE_TYPE, aggregate_id=order_id)
    if not result.found:
        return 404, {"error": "not_found", "order_id": order_id}
    return 200, result.aggregate


def healthz(environ: Dict[str, Any]) -> Tuple[int, Any]:
    return 200, {"pid": os.getpid()}


ROUTES: List[Tuple[str, "re.Pattern[str]", Callable[..., Tuple[int, Any]]]] = [
    ("POST", re.compile(r"/orders"), create_order),
    ("POST", re.compile(r"/orders/([^/]+)/events"), append_event),
    ("GET", re.compile(r"/orders/([^/]+)"), get_order),
    ("GET", re.compile(r"/healthz"), healthz),
]

REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    headers = [("Content-Type", "application/json")]
    try:
        for route_method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match:
                if method != route_method:
                    continue
                status, body = handler(environ, *match.groups())
                break
        else:
            status, body = 404, {"error": "not_found", "path": path}
    except HTTPError as e:
        status, body = e.status, e.body
    except EventDBXError as e:
        status, body = status_for(e)
        if status == 503:
            headers.append(("Retry-After", "1"))
    data = json.dumps(body).encode()
    headers.append(("Content-Length", str(len(data))))
    start_response(f"{status} {REASONS.get(status, '')}", headers)
    return [data]
