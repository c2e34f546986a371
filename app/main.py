"""create_app(settings): the one place where the HTTP app is wired."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api import (
    admin,
    backups,
    chat,
    collections,
    console,
    curation,
    documents,
    feedback,
    health,
    metrics,
    openai,
    owned,
    quarantine,
    reindex,
    releases,
    signin,
    sources,
    uploads,
)
from app.api.errors import install_error_handlers
from app.api.middleware import (
    AuthMiddleware,
    BodySizeLimitMiddleware,
    SecurityHeadersMiddleware,
    hsts_header,
)
from app.auth.service import SignInService
from app.components import Components, build_components
from app.config_report import settings_hashes
from app.security.keys import KeyStore
from app.security.limits import RateLimiter
from app.security.secrets import check_startup, resolve_pepper
from app.settings import Settings
from app.store.audit import record_settings
from app.store.retention import Purger
from app.telemetry.middleware import RequestTelemetryMiddleware, RouteNames
from app.telemetry.reporter import Telemetry
from ingest.sources.scheduler import Scheduler

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "web" / "static"
OPENAPI_PATH = "/openapi.json"


def audit_settings(components: Components) -> None:
    """Record in the audit trail which non-secret settings changed since the previous
    start (never their values); a failure is logged and the server starts anyway."""
    try:
        event = record_settings(components.db, settings_hashes(components.settings))
    except Exception:
        log.exception("could not compare the settings with the previous start")
        return
    if event is not None and event.detail.get("changed"):
        log.info(
            "settings changed since the previous start: %s", ", ".join(event.detail["changed"])
        )


def build_signin(settings: Settings, components: Components) -> SignInService | None:
    """The sign-in service where sign-in is configured. Its cookie key is derived from
    the API key pepper (one secret fewer to manage; rotating the pepper signs everyone
    out). The provider is asked for its metadata now, so a wrong issuer shows in the
    log at start; a provider that is down only delays sign-ins."""
    if not settings.oidc.enabled:
        return None
    pepper, _previous = resolve_pepper(settings)
    secret = hmac.new(pepper, b"docchat session cookie", hashlib.sha256).digest()
    metrics = components.telemetry.metrics

    def count(metric: str, label: str) -> None:
        counter = metrics.signins if metric == "signin" else metrics.auth_refusals
        counter.labels(label).inc()

    service = SignInService(settings.oidc, components.db, secret, count=count)
    try:
        service.provider.metadata()
    except Exception as exc:
        log.warning("the OpenID provider could not be read at start-up: %s", exc)
    return service


def create_app(
    settings: Settings,
    components: Components | None = None,
    *,
    owns_components: bool | None = None,
) -> FastAPI:
    """The app; it opens its components at start-up unless given open ones (tests, or
    `docchat serve`, which opens them first to report failures plainly). It closes them
    at shutdown when it opened them or `owns_components` says so."""
    check_startup(settings)
    if components is not None and components.settings is not settings:
        # One source of settings: the components answer with the app's.
        components = components.using(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = components is None if owns_components is None else owns_components
        app.state.components = (
            components
            if components is not None
            else await asyncio.to_thread(build_components, settings)
        )
        ready: Components = app.state.components
        ready.telemetry.metrics.set_model(ready.engine, ready.embedder.name)
        log.info(
            "docchat ready: model %s (%s)",
            ready.engine.model_id,
            (ready.engine.model_sha256 or "remote")[:12],
        )
        alerts = ready.telemetry.alerts
        monitor = asyncio.create_task(alerts.run()) if alerts is not None else None
        # Every replica follows the registry's active model.
        app.state.model_host = host = ready.model_host()
        following = asyncio.create_task(host.run()) if host is not None else None
        await asyncio.to_thread(audit_settings, ready)
        app.state.signin = await asyncio.to_thread(build_signin, settings, ready)
        retention = settings.retention
        purger = Purger(
            ready.db,
            conversation_days=retention.conversation_days,
            feedback_days=retention.feedback_days,
            interval_s=retention.purge_interval_s,
        )
        purging = asyncio.create_task(purger.run()) if purger.enabled else None
        # Sources: syncs an admin starts, and (sources.scheduler) the due ones; only a
        # writer of the vector store can run them.
        app.state.sources = None
        syncing = None
        if ready.vectors.writable:
            app.state.sources = scheduler = Scheduler(settings, ready.ingestor)
            if settings.sources.scheduler:
                syncing = asyncio.create_task(scheduler.run())
        try:
            yield
        finally:
            if purging is not None:
                purging.cancel()
            if syncing is not None:
                syncing.cancel()
            if following is not None:
                following.cancel()
            if monitor is not None and alerts is not None:
                monitor.cancel()
                await alerts.drain()
            if app.state.signin is not None:
                app.state.signin.close()
            if owned:
                app.state.components.close()

    # No Swagger/ReDoc pages: they load scripts from a CDN, which the CSP (and the
    # no-byte-leaves rule) forbids. The schema itself is served outside production.
    app = FastAPI(
        title="docchat",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH if settings.api_docs_enabled else None,
    )
    install_error_handlers(app)
    for router in (
        health.router,
        chat.router,
        collections.router,
        collections.admin,
        console.router,
        openai.router,
        documents.router,
        feedback.router,
        feedback.review,
        admin.admin,
        uploads.uploads,
        owned.router,
        quarantine.router,
        backups.router,
        releases.router,
        curation.router,
        reindex.router,
        metrics.router,
        signin.router,
        sources.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/admin", include_in_schema=False)
    async def console_page() -> FileResponse:
        # The page is public; every figure and action on it is an admin route.
        return FileResponse(STATIC / "admin.html")

    @app.get("/collections", include_in_schema=False)
    async def owner_page() -> FileResponse:
        # Public like /admin: what it shows comes from the owners' routes.
        return FileResponse(STATIC / "owner.html")

    @app.get("/sources/{document_id}", include_in_schema=False)
    async def source_page(document_id: str) -> FileResponse:
        return FileResponse(STATIC / "source.html")

    def keys() -> KeyStore:
        # Opened in the lifespan, after the middleware stack is built.
        store: KeyStore = app.state.components.guards.keys
        return store

    def telemetry() -> Telemetry:
        found: Telemetry = app.state.components.telemetry
        return found

    security = settings.security
    public = {OPENAPI_PATH} if settings.api_docs_enabled else set()
    if not settings.telemetry.metrics_require_key:
        public.add(metrics.METRICS_PATH)
    # Added innermost first: request telemetry wraps everything (its id and log line
    # cover refusals too), then headers, the body cap, CORS, and authentication.
    app.add_middleware(
        AuthMiddleware,
        enabled=settings.auth_enabled,
        keys=keys,
        limiter=RateLimiter(security.rate_limit_per_minute),
        failures=RateLimiter(security.auth_failures_per_minute),
        public_extra=frozenset(public),
        signin=lambda: getattr(app.state, "signin", None),
        cookie_name=signin.cookie_names(settings)[0],
        public_url=settings.oidc.public_url,
    )
    if security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=security.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        limit=security.max_body_bytes,
        limits_by_path={uploads.UPLOAD_PATH: security.max_upload_bytes},
        limits_by_pattern=[(owned.UPLOAD_PATH, security.max_upload_bytes)],
    )
    hsts = security.hsts_max_age_s if settings.env == "production" else 0
    app.add_middleware(SecurityHeadersMiddleware, extra=hsts_header(hsts))
    app.add_middleware(
        RequestTelemetryMiddleware, telemetry=telemetry, routes=RouteNames(app.routes)
    )
    return app
