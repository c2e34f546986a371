"""`docchat serve`: the web app and API."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import fail, load_for_serving


def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Start the web app and API.

    Example: docchat serve --host 0.0.0.0 --port 8000
    """
    import uvicorn

    from app.api.head_limits import head_limited_protocol
    from app.components import build_components
    from app.llm.base import EngineUnavailable
    from app.llm.provision import ModelNotFound
    from app.main import create_app
    from app.store.db import DatabaseUnavailable
    from app.store.index_record import EmbeddingMismatch
    from app.store.vectors import VectorStoreBusy, VectorStoreUnavailable

    # Every problem at once (start-up check included), before seconds of model loading.
    settings = load_for_serving()
    # Opened here rather than in the app's lifespan, so that an unreachable store or a
    # missing model is one clear line and exit 1, not a traceback from uvicorn.
    try:
        components = build_components(settings)
    except (
        DatabaseUnavailable,
        VectorStoreBusy,
        VectorStoreUnavailable,
        ModelNotFound,
        EngineUnavailable,
        EmbeddingMismatch,
    ) as exc:
        raise fail(f"cannot start: {exc}") from None
    # The app closes them at shutdown: uvicorn may end the process by re-raising SIGTERM.
    uvicorn.run(
        create_app(settings, components, owns_components=True),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.logging.level.lower(),
        log_config=None,  # keep the redacting handler installed above
        access_log=False,  # docchat logs each request with its context
        timeout_graceful_shutdown=30,
        # httptools with a cap on request heads (uvicorn's own has none).
        http=head_limited_protocol(
            settings.server.max_header_bytes,
            settings.server.max_header_count,
            settings.server.header_timeout_s,
        ),
    )
