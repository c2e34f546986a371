"""Build the external systems from settings: the one place that knows them all."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from app.access.collections import Collections
from app.access.policy import CollectionAccess
from app.chat.service import ChatService
from app.llm.base import ChatEngine
from app.llm.embedder import Embedder
from app.llm.engine import LlamaEngine
from app.llm.hosting import ModelHost, SwappableEngine
from app.llm.provision import chat_model_path, embedding_model_path
from app.llm.recommend import default_model
from app.rag.prompt import system_prompt
from app.rag.retrieval import Retriever, RetrieverPool
from app.releases.entries import AdapterEntry, ModelEntry
from app.releases.errors import RegistryError
from app.releases.gate import Gate
from app.releases.measure import Rows, measure_with
from app.releases.registry import Registry
from app.security.keys import KeyStore
from app.security.output_guard import EVALUATION_CANARY, OutputGuard, new_canary
from app.security.pii import redactor_for
from app.security.redaction import Redactor
from app.security.secrets import check_startup, known_secrets, resolve_pepper
from app.settings import Settings
from app.store.db import Database
from app.store.db import open_database as open_database  # its home; tests import it here
from app.store.vectors import VectorStore
from app.telemetry.alerts import AlertManager, WebhookSender
from app.telemetry.anomaly import AnomalyDetector
from app.telemetry.metrics import Metrics
from app.telemetry.reporter import Telemetry
from app.telemetry.tracing import make_tracer
from ingest.pipeline import Ingestor

log = logging.getLogger(__name__)


def open_vectors(settings: Settings, *, writer: bool) -> VectorStore:
    """The vector store; a writer holds the embedded store exclusively."""
    return VectorStore(url=settings.vectors.url, path=settings.chroma_path, writer=writer)


def load_embedder(
    settings: Settings, path: Path | None = None, embedding_backend: str | None = None
) -> Embedder:
    """The embedding model from its folder (the configured one unless given), run by
    the configured embedding.backend (unless given: torch, onnx, ...; not llm.backend,
    which says where the chat model runs)."""
    path = embedding_model_path(path or settings.embedding.model_path)
    embedding_backend = embedding_backend or settings.embedding.backend
    log.info(
        "loading embedding model from %s (%s, precision %s)",
        path,
        embedding_backend,
        settings.embedding.precision,
    )
    embedder = Embedder(
        path,
        device=settings.embedding.device,
        batch_size=settings.embedding.batch_size,
        backend=embedding_backend,
        cache_dir=settings.embedding.cache_dir,
        precision=settings.embedding.precision,
        bf16_runtime=settings.embedding.bf16_runtime,
    )
    # What runs it, as llama.cpp's kernels are named: torch, onnx, torch-bf16, openvino-bf16.
    log.info("embedding runs on %s", embedder.identity.backend)
    return embedder


def load_engine(settings: Settings, db: Database | None = None) -> ChatEngine:
    """The chat model: the registry's active model loaded here (behind a swappable
    engine, so a newly activated one can replace it while answers run), or a client of
    the remote server (nothing loaded; the registry does not apply)."""
    if settings.llm.backend == "remote":
        from app.llm.remote import RemoteEngine

        remote = RemoteEngine(settings.llm)
        log.info("chat model %s on a remote server", remote.model_id)
        return remote
    if db is None:
        raise ValueError("a local model is found through the registry: pass the database")
    return SwappableEngine(load_model(settings, active_model(settings, db)))


def active_model(settings: Settings, db: Database) -> ModelEntry:
    """The registry's active model, checked; on the first start, the configured (or
    default) file, registered and activated."""
    registry = Registry(db)
    entry = registry.active()
    if entry is None:
        choice = None
        if settings.llm.model_path is None:
            choice, why = default_model(settings)
            log.info("no chat model configured: %s (%s)", choice, why)
        path = chat_model_path(settings.llm.model_path, settings.data_dir / "models", choice)
        log.info("registering %s as the first active model", path.name)
        return registry.seed(path)
    configured = settings.llm.model_path
    if configured is not None and configured.expanduser().resolve() != entry.path:
        log.warning(
            "llm.model_path (%s) is not the active model %s: the registry decides "
            "(docchat models add / activate)",
            configured,
            entry.name,
        )
    registry.verify(entry)
    return entry


def load_model(settings: Settings, entry: ModelEntry) -> LlamaEngine:
    """A registered model, with its adapter if it has one, loaded into llama.cpp
    (CannotChat if it cannot serve chat)."""
    log.info("loading chat model %s (%s)", entry.release, entry.sha256[:12])
    adapter = entry.adapter
    return LlamaEngine(
        settings.llm,
        entry.path,
        name=entry.name,
        sha256=entry.sha256,
        adapter=adapter.path if adapter else None,
        adapter_name=adapter.name if adapter else None,
        adapter_sha256=adapter.sha256 if adapter else None,
    )


@dataclass
class Guards:
    """The security pieces built from the secrets: key store, output guard, redactor."""

    keys: KeyStore
    output: OutputGuard
    redactor: Redactor


def build_guards(settings: Settings, db: Database) -> Guards:
    """Key store and checks; the pepper (generated outside production) counts as a secret.

    Start-up problems are raised first, all together: a missing production pepper is
    one of them, not a lone error from resolving it.
    """
    check_startup(settings)
    pepper, previous = resolve_pepper(settings)
    values = known_secrets(settings)
    pinned = settings.security.canary
    canary = new_canary(pinned.get_secret_value() if pinned else None)
    patterns = settings.security.blocked_output_patterns
    return Guards(
        KeyStore(db, pepper, previous),
        OutputGuard(values, canary, patterns, system_prompt(canary)),
        Redactor(values, also=pii.redact if (pii := redactor_for(settings.privacy)) else None),
    )


def build_telemetry(settings: Settings, db: Database, engine: ChatEngine) -> Telemetry:
    """Metrics bound to the engine's queue and the ingest records, and the tracer."""
    metrics = Metrics()
    metrics.bind_engine(lambda: engine.waiting, lambda: engine.running)
    metrics.bind_database(db)
    tracer, provider = make_tracer(settings.telemetry)
    alerts = settings.alerts
    token = alerts.webhook_token.get_secret_value() if alerts.webhook_token else None
    manager = AlertManager(
        alerts,
        WebhookSender(alerts.webhooks, token, retries=alerts.retries),
        on_state=lambda name, firing: metrics.alerts_firing.labels(name).set(int(firing)),
        anomalies=(
            AnomalyDetector.from_database(settings.anomalies, db)
            if settings.anomalies.enabled
            else None
        ),
    )
    return Telemetry(tracer, metrics, provider, manager)


@dataclass
class Components:
    """Everything the server needs, opened once at start-up.

    It closes only the parts it opened (`closers`): parts handed to build_components
    stay their owner's, so tests can share one loaded model across many apps.
    """

    settings: Settings
    db: Database
    vectors: VectorStore
    embedder: Embedder
    engine: ChatEngine
    guards: Guards
    telemetry: Telemetry = field(default_factory=Telemetry)
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @cached_property
    def access(self) -> CollectionAccess:
        """Who may read which collection (refusals counted with the auth refusals)."""
        refusals = self.telemetry.metrics.auth_refusals

        def refused(_collection: str) -> None:
            refusals.labels("collection_not_readable").inc()

        return CollectionAccess(self.db, self.settings.vectors.collection, refused)

    @cached_property
    def retrievers(self) -> RetrieverPool:
        """One retriever per collection, built when first asked of."""

        def build(collection: str) -> Retriever:
            return Retriever.configured(
                self.settings.rag,
                self.embedder,
                self.vectors,
                self.db,
                collection,
                data_dir=self.settings.data_dir,
                telemetry=self.telemetry,
            )

        return RetrieverPool(build)

    @cached_property
    def chat(self) -> ChatService:
        """The chat service over these components (built once)."""
        return ChatService(
            self.retrievers.get(self.settings.vectors.collection),
            self.engine,
            self.guards.output,
            self.db,
            rag=self.settings.rag,
            llm=self.settings.llm,
            telemetry=self.telemetry,
            pii=redactor_for(self.settings.privacy),
            access=self.access,
            retrievers=self.retrievers.get,
        )

    def using(self, **parts: Any) -> Components:
        """These components with some parts swapped (settings, engine, telemetry...).
        The copy owns nothing: closing it closes none of the parts."""
        return replace(self, closers=[], **parts)

    def evaluating(self) -> Components:
        """These components answering as evaluations do: with the fixed evaluation
        canary in the system prompt instead of this process's, so that greedy answers
        repeat between processes (a release's recorded figures and the gate's new
        measurement differ by the model, not by a random marker)."""
        output = self.guards.output.with_canary(EVALUATION_CANARY, system_prompt(EVALUATION_CANARY))
        return self.using(guards=replace(self.guards, output=output))

    def ingestor(self, *, max_file_bytes: int | None = None) -> Ingestor:
        """An ingestor over these stores and embedder (the server's uploads)."""
        return Ingestor.configured(
            self.settings.ingest,
            self.db,
            self.vectors,
            self.embedder,
            max_file_bytes=max_file_bytes,
        )

    def warm(self, engine: ChatEngine | None = None) -> None:
        """Evaluate the shared system prompt once (on `engine`, or the one in service),
        so each request skips it."""
        engine = engine or self.engine.pin()
        engine.set_prefix(self.chat.shared_prefix(engine))

    @cached_property
    def gate(self) -> Gate:
        """The release gate, measuring inside this server with its stores and embedder."""
        return build_gate(self.settings, self.db, lambda engine: self)

    def model_host(self) -> ModelHost[ModelEntry] | None:
        """What keeps this server on the release in service (None when the model is
        not swappable: a remote server, or an engine handed in by a test)."""
        if not isinstance(self.engine, SwappableEngine):
            return None
        metrics = self.telemetry.metrics
        registry = Registry(self.db)

        def load(release: ModelEntry) -> ChatEngine:
            registry.verify(release)
            return load_model(self.settings, release)

        return ModelHost(
            self.engine,
            registry.active,
            load,
            self.warm,
            poll_s=self.settings.models.poll_interval_s,
            on_swap=lambda engine: metrics.set_model(engine, self.embedder.name),
        )

    def close(self) -> None:
        """Release what these components opened, newest first."""
        while self.closers:
            self.closers.pop()()


def build_gate(
    settings: Settings,
    db: Database,
    answering: Callable[[ChatEngine], Components] | None = None,
) -> Gate:
    """The one release gate, for models and adapters alike: each candidate loaded here,
    and asked over `answering(engine)` (a server's own components) scoped to each gate
    set's collection, or, for a command, over components opened as a reader when the
    first measurement needs them; an adapter's held-out rows read from its own dataset
    (refused if that changed since it was trained)."""
    opened: list[Components] = []

    def parts(engine: ChatEngine) -> Components:
        if answering is not None:
            return answering(engine)
        if not opened:  # a command's: opened once, as a reader, on the first candidate
            opened.append(build_components(settings, writer=False, db=db, engine=engine))
        return opened[0]

    def scoped(engine: ChatEngine, collection: str) -> Components:
        vectors = settings.vectors.model_copy(update={"collection": collection})
        return (
            parts(engine)
            .evaluating()
            .using(engine=engine, settings=settings.model_copy(update={"vectors": vectors}))
        )

    def held_out(release: ModelEntry, rows: Rows) -> dict[str, Any]:
        from app.finetune.held_out import held_out_report

        engine = load_model(settings, release)
        try:
            embed = parts(engine).embedder.embed
            return held_out_report(engine, rows, embed, max_tokens=settings.llm.max_tokens)
        finally:
            engine.close()

    def held_out_rows(adapter: AdapterEntry) -> Rows:
        from app.finetune.training_run import dataset_rows

        sha256, rows = dataset_rows(db, settings.data_dir, adapter.dataset_name, "held-out")
        if sha256 != adapter.dataset_sha256:
            raise RegistryError(
                f"dataset {adapter.dataset_name!r} is not the one {adapter.name!r} was trained on"
            )
        return rows

    measure = measure_with(settings, lambda release: load_model(settings, release), scoped)
    return Gate(settings.models, Registry(db), measure, held_out, held_out_rows)


def build_components(
    settings: Settings,
    *,
    writer: bool = True,
    db: Database | None = None,
    vectors: VectorStore | None = None,
    embedder: Embedder | None = None,
    engine: ChatEngine | None = None,
    telemetry: Telemetry | None = None,
) -> Components:
    """Open every component the settings choose, or take the parts given (blocking:
    seconds, mostly model loading).

    The server is a writer (documents can be uploaded), so it holds the embedded store
    alone; one-shot commands such as `ask` open it as readers.
    """
    with ExitStack() as opened:
        if db is None:
            db = open_database(settings)
            opened.callback(db.close)
        if vectors is None:
            vectors = open_vectors(settings, writer=writer)
            opened.callback(vectors.close)
        guards = build_guards(settings, db)
        if embedder is None:
            embedder = load_embedder(settings)
            # Follow a `docchat reindex --embedding` swap without a restart.
            # (auto: whichever variant of its weights the new index was built with)
            embedder.follow_swaps(lambda model: load_embedder(settings, Path(model.path), "auto"))
        # The served collection must have been built with this model, in either of its
        # variants under embedding.backend auto (a collection from before records
        # existed adopts it).
        served = vectors.target(settings.vectors.collection).record
        own = embedder.variant_for(served)
        vectors.check_model(settings.vectors.collection, own.identity, adopt=False)
        # The default collection is registered, readable by everyone who may chat, as it
        # always was (an admin may restrict it: docchat collections revoke).
        Collections(db).ensure(settings.vectors.collection, everyone=True, actor="server")
        if engine is None:
            engine = load_engine(settings, db)
            opened.callback(engine.close)
        if telemetry is None:
            telemetry = build_telemetry(settings, db, engine)
            opened.callback(telemetry.shutdown)
        components = Components(settings, db, vectors, embedder, engine, guards, telemetry)
        components.warm()
        closers = opened.pop_all()
        components.closers.append(closers.close)
        return components
    raise AssertionError("unreachable")  # mypy: ExitStack may swallow exceptions


@contextmanager
def open_ingestor(
    settings: Settings,
    *,
    dry_run: bool = False,
    embedder: Embedder | None = None,
    extra_exclude: Sequence[str] = (),
    max_file_bytes: int | None = None,
) -> Iterator[Ingestor]:
    """An ingestor over the settings' stores, closed afterwards: the vector store is
    opened first and as the one writer (none for a dry run, which writes nothing), so
    a busy store is reported before anything else is loaded."""
    with ExitStack() as opened:
        vectors = None
        if not dry_run:
            vectors = open_vectors(settings, writer=True)
            opened.callback(vectors.close)
        db = open_database(settings)
        opened.callback(db.close)
        yield Ingestor.configured(
            settings.ingest,
            db,
            vectors,
            embedder or load_embedder(settings),
            max_file_bytes=max_file_bytes,
            extra_exclude=extra_exclude,
        )
