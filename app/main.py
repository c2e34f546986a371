"""create_app(settings): the one place where the HTTP app is wired."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api import chat, documents, health, openai
from app.api.errors import install_error_handlers
from app.components import Components, build_components
from app.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "web" / "static"


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    """The app; it opens its components at start-up unless given open ones (tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = components is None
        app.state.components = (
            await asyncio.to_thread(build_components, settings) if owned else components
        )
        log.info("docchat ready: model %s", app.state.components.engine.model_id)
        try:
            yield
        finally:
            if owned:
                app.state.components.close()

    app = FastAPI(title="docchat", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    for module in (health, chat, openai, documents):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/sources/{document_id}", include_in_schema=False)
    async def source_page(document_id: str) -> FileResponse:
        return FileResponse(STATIC / "source.html")

    return app
