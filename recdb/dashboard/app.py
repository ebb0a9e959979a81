"""The Starlette application behind `recdb serve`: server-rendered pages, no JavaScript.

Every page reads through the read-only pool (recdb.dashboard.db) in one transaction and
renders a Jinja2 template with autoescaping on, so whatever the database or the URL
holds is shown as text. Errors become pages that say what happened (400 bad id, 404
unknown id, 503 database unreachable), never a traceback; the traceback of an
unexpected error goes to the server's log.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recdb.dashboard import pages, results
from recdb.dashboard.db import ROLE, STATEMENT_TIMEOUT_MS, open_pool
from recdb.dashboard.params import K_MAX, parse_id, parse_k
from recdb.metrics import Gauges, database_registry, read_gauges

log = logging.getLogger(__name__)
_HERE = Path(__file__).resolve().parent

# No script may run and nothing loads from elsewhere; pages hold people's histories, so
# no cache keeps them.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(number=_number, age=_age, when=_when, json=_json)
    env.globals.update(role=ROLE, k_max=K_MAX)
    return Jinja2Templates(env=env)


class Dashboard:
    """The pages, over one pool opened at startup and closed at shutdown."""

    def __init__(self, url: str, files: results.ResultFiles, pool_size: int = 4) -> None:
        self.url = url
        self.files = files
        self.pool_size = pool_size
        self._pool: ConnectionPool[Any] | None = None
        self.templates = templates()
        self.registry = database_registry(self.read_gauges)

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            raise HTTPException(503, "the dashboard is starting or stopping")
        return self._pool

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._pool = open_pool(self.url, max_size=self.pool_size)
        try:
            yield
        finally:
            pool, self._pool = self._pool, None
            pool.close()

    def read_gauges(self) -> Gauges:
        with self.pool.connection() as conn:
            return read_gauges(conn)

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"whoami": None, **context}, status_code=status
        )

    # --- pages ----------------------------------------------------------------------------

    def status(self, request: Request) -> Response:
        with self.pool.connection() as conn:
            data = pages.status(conn)
            who = pages.whoami(conn)
        return self.render(request, "status.html", {"page": "status", "whoami": who, **data})

    def user(self, request: Request) -> Response:
        user_id = parse_id(request.path_params["user_id"], "user")
        k = parse_k(request.query_params.get("k"))
        with self.pool.connection() as conn:
            data = pages.user(conn, user_id, k)
            who = pages.whoami(conn)
        if data is None:
            raise HTTPException(
                404,
                f"user {user_id} is unknown: no event names them and no vector is stored"
                " (rerank() would give them the cold-start ordering: popular, then new items)",
            )
        context = {"page": "user", "whoami": who, "user_id": user_id, "k": k, **data}
        context["recent"] = pages.RECENT_EVENTS
        return self.render(request, "user.html", context)

    def item(self, request: Request) -> Response:
        item_id = parse_id(request.path_params["item_id"], "item")
        with self.pool.connection() as conn:
            data = pages.item(conn, item_id)
            who = pages.whoami(conn)
        if data is None:
            raise HTTPException(404, f"item {item_id} is unknown: no such row in recdb.items")
        return self.render(request, "item.html", {"page": "item", "whoami": who, **data})

    def lookup(self, request: Request) -> Response:
        """The forms in the header: /users?id=42 -> /users/42."""
        what = request.url.path.strip("/")[:-1]  # "user" or "item"
        raw = request.query_params.get("id", "")
        target = f"/{what}s/{parse_id(raw, what)}"
        return RedirectResponse(target, status_code=303)

    def models(self, request: Request) -> Response:
        with self.pool.connection() as conn:
            registry = pages.models(conn)
            who = pages.whoami(conn)
        return self.render(
            request, "models.html", {"page": "models", "whoami": who, "models": registry}
        )

    def results(self, request: Request) -> Response:
        f = self.files
        ev = results.load(f.eval_json, "--eval-json", "recdb eval --json")
        bench = results.load(f.bench_json, "--bench-json", "recdb bench --json")
        context: dict[str, Any] = {
            "page": "results",
            "eval": ev,
            "bench": bench,
            "eval_table": results.eval_rows(ev.data) if ev.data else None,
            "bench_rows": results.bench_rows(bench.data) if bench.data else None,
            "bench_columns": results.BENCH_COLUMNS,
            "plot": f.eval_plot,
            "plot_exists": f.eval_plot is not None and f.eval_plot.is_file(),
        }
        return self.render(request, "results.html", context)

    def eval_plot(self, _request: Request) -> Response:
        path = self.files.eval_plot
        if path is None or not path.is_file():
            raise HTTPException(404, "no eval plot: start recdb serve with --eval-plot PATH")
        return FileResponse(path, media_type="image/png")

    def metrics(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    # --- errors ---------------------------------------------------------------------------

    def error(self, request: Request, status: int, detail: str) -> Response:
        return self.render(
            request, "error.html", {"page": "error", "status": status, "detail": detail}, status
        )

    async def on_http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":  # the router's: no such route
            detail = f"no page at {request.url.path}"
        return self.error(request, exc.status_code, detail)

    async def on_database_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, psycopg.errors.QueryCanceled):
            detail = (
                f"a query took longer than {STATEMENT_TIMEOUT_MS / 1000:.0f} s and was cancelled"
            )
        elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
            detail = f"{ROLE} may not read what this page needs: {exc.diag.message_primary}"
        elif isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
            detail = f"the recdb schema is missing or old ({exc.diag.message_primary}):"
            detail += " run `recdb db upgrade`"
        elif isinstance(exc, psycopg.OperationalError):
            detail = f"the database cannot be reached: {exc}"
        else:
            log.exception("database error on %s", request.url.path, exc_info=exc)
            detail = "the database answered with an error; it is in the server's log"
        return self.error(request, 503, detail)

    async def on_unexpected(self, request: Request, exc: Exception) -> Response:
        # The server logs the traceback; the page does not show it.
        return self.error(request, 500, "unexpected error; the details are in the server's log")


def create_app(
    url: str,
    files: results.ResultFiles | None = None,
    *,
    allowed_hosts: Sequence[str] = ("*",),
    pool_size: int = 4,
) -> Starlette:
    """The dashboard for the database at ``url``. ``allowed_hosts`` (Host headers served)
    defends a loopback-bound dashboard against DNS rebinding."""
    d = Dashboard(url, files or results.ResultFiles(), pool_size)
    routes = [
        Route("/", d.status),
        Route("/users", d.lookup),
        Route("/users/{user_id}", d.user),
        Route("/items", d.lookup),
        Route("/items/{item_id}", d.item),
        Route("/models", d.models),
        Route("/results", d.results),
        Route("/results/eval.png", d.eval_plot),
        Route("/metrics", d.metrics),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=d.lifespan,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
        ],
        exception_handlers={
            HTTPException: d.on_http_error,
            psycopg.Error: d.on_database_error,
            Exception: d.on_unexpected,
        },
    )
