"""SQLAlchemy models of everything docchat keeps in SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database. PostgreSQL keeps the zone; SQLite
    has no such type and hands back naive values, which are UTC (all docchat writes is):
    they are marked so, so that API output and arithmetic match on both."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def new_id() -> str:
    """Random ids: opaque, safe to show in URLs, no row count leaked."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base with one naming convention, so migrations name constraints alike."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
    }


class Document(Base):
    """One source file of a collection, as last ingested."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection", "path"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    collection: Mapped[str] = mapped_column(String(63), index=True)
    # Absolute path: the identity of the file across runs.
    path: Mapped[str] = mapped_column(String(1024))
    # What citations show: the path relative to the folder given to `ingest`.
    source: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(String(512))
    content_hash: Mapped[str] = mapped_column(String(64))
    # "pending" while its chunks are being replaced; "indexed" once they are all in.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    n_chunks: Mapped[int] = mapped_column(Integer, default=0)
    # sha256 of the cleaned text, and the bottom-k MinHash of its word 5-shingles (a JSON
    # list of ints, see ingest/quality.py): later runs find duplicates and near-duplicates
    # of it without reloading the file. NULL for rows stored before the checks existed.
    text_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    signature: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="Chunk.ord"
    )


class Chunk(Base):
    """A chunk's text, kept beside its vector so sources can be shown and re-embedded."""

    __tablename__ = "chunks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    ord: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(512), default="")
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    n_tokens: Mapped[int] = mapped_column(Integer)

    document: Mapped[Document] = relationship(back_populates="chunks")


# What a run can do with a file: the run vocabulary, and the IngestRun counters below.
OUTCOMES = ("new", "changed", "unchanged", "deleted", "failed", "skipped", "quarantined")


class IngestRun(Base):
    """One `docchat ingest` run and its summary (a counter per name in OUTCOMES)."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(String(63))
    roots: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # running, completed, partial (some files failed), failed, interrupted
    status: Mapped[str] = mapped_column(String(16), default="running")
    dry_run: Mapped[bool] = mapped_column(default=False)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Kept out of the index by a quality check (e.g. an exact duplicate).
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    chunks_written: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    findings: Mapped[list[IngestFinding]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="IngestFinding.id"
    )


class IngestFinding(Base):
    """A data-quality finding of an ingest run: an error (file not indexed) or a warning
    (ingest.quality.Finding, stored; the table keeps its first name)."""

    __tablename__ = "ingest_issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(1024))
    severity: Mapped[str] = mapped_column(String(8))  # error | warning
    # The check that found it (ingest.quality.CHECKS): "load", "duplicate", ...
    check: Mapped[str] = mapped_column(String(32), default="load")
    reason: Mapped[str] = mapped_column(Text)

    run: Mapped[IngestRun] = relationship(back_populates="findings")


class Conversation(Base):
    """A chat between one user and the assistant."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200), default="")
    # Who started it: an API key's id (12 hex digits), or "u:<user id>" for a signed-in
    # person (Identity.owner); no one else but an admin can read or continue it.
    owner: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    # The collection it answers from, for all its turns (NULL: the default collection,
    # as every conversation from before collections had readers).
    collection: Mapped[str | None] = mapped_column(String(63), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.seq"
    )


class Message(Base):
    """One question or answer; answers keep their citations and token counts."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # Order within the conversation; timestamps can tie.
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text, default="")
    # complete, streaming, cancelled (client left), error
    status: Mapped[str] = mapped_column(String(16), default="complete")
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    answered_from_docs: Mapped[bool | None] = mapped_column(default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    # Lineage: the hash of the model file that wrote it (None: a remote model server).
    model_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # The LoRA adapter's file, when one was served with the model.
    adapter_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    # Why the model stopped: stop, length (its length limit), repetition (llm.stop_repeats)
    # or content_filter; None for questions, unfinished answers and older rows. A reloaded
    # conversation marks an answer cut short as the live stream did.
    finish_reason: Mapped[str | None] = mapped_column(String(16), default=None)
    # Results of the checks run on the answer, e.g. {"blocked": "secret"}.
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Feedback(Base):
    """A user's rating of an answer: one per answer and API key, replaced when given again."""

    __tablename__ = "feedback"
    __table_args__ = (
        # Also the index that finds an answer's feedback (message_id comes first).
        UniqueConstraint("message_id", "given_by"),
        CheckConstraint("rating IN (1, -1)", name="rating"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    rating: Mapped[int] = mapped_column(SmallInteger)  # 1 up, -1 down
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    # Name of the API key that gave it (never the key); "" when authentication is off.
    given_by: Mapped[str] = mapped_column(String(100), default="")
    # When it was given; a replacement sets it anew.
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ApiKey(Base):
    """An API key: only its keyed hash is stored, never the key."""

    __tablename__ = "api_keys"

    # The public part of the key (dck_<id>_<secret>): finds the row without the secret.
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # chat | ingest | admin
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # The collections it may read, and no other (a JSON list of names; NULL: not limited).
    # Names, not foreign keys: deleting a collection must not lift a key's limit.
    collections: Mapped[list[str] | None] = mapped_column(JSON, default=None)


class ChatModel(Base):
    """A chat model release in the registry: a GGUF file pinned by its hash, what the
    file says about itself, and its latest evaluation."""

    __tablename__ = "chat_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    architecture: Mapped[str] = mapped_column(String(64), default="")
    parameters: Mapped[int | None] = mapped_column(BigInteger, default=None)
    quantization: Mapped[str] = mapped_column(String(32), default="")
    context_length: Mapped[int | None] = mapped_column(Integer, default=None)
    chat_template: Mapped[bool] = mapped_column(default=False)
    # Where it came from: "catalog:NAME", "file", "settings" (seeded at first start).
    source: Mapped[str] = mapped_column(String(200), default="file")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The latest evaluation on the gate's question sets (AnswerReport and retrieval).
    eval_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)


class ModelActivation(Base):
    """One change of the active model, newest last: the registry's history, which
    `rollback` walks back. The latest row names the model in service."""

    __tablename__ = "model_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100))
    model_sha256: Mapped[str] = mapped_column(String(64))
    previous: Mapped[str | None] = mapped_column(String(100), default=None)
    # activate, rollback or seed (the configured model, registered at first start).
    action: Mapped[str] = mapped_column(String(16))
    forced: Mapped[bool] = mapped_column(default=False)
    # Who asked (an admin key's name, "cli") and, for a forced one, the gate's findings.
    actor: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The LoRA adapter served on the model (None: the base model alone).
    adapter_name: Mapped[str | None] = mapped_column(String(100), default=None)
    adapter_sha256: Mapped[str | None] = mapped_column(String(64), default=None)


class Adapter(Base):
    """A LoRA adapter in the registry: a GGUF adapter file pinned by its hash, the base
    model and dataset it was trained from, how, and its latest evaluation."""

    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # The base it was trained on: only that file may load it.
    base_name: Mapped[str] = mapped_column(String(100))
    base_sha256: Mapped[str] = mapped_column(String(64), index=True)
    architecture: Mapped[str] = mapped_column(String(64))
    # Of the base: layers, embedding width, heads (JSON), for the reason of a refusal.
    dimensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_name: Mapped[str] = mapped_column(String(100))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Steps, losses, seconds, device.
    training: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    eval_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)


# What a curated example can be: in use, its source changed since it was approved
# (app/curation/staleness.py), or set aside by a reviewer.
EXAMPLE_STATUSES = ("active", "stale", "dropped")
# Where it came from: a rated answer, an answer without a rating, by hand, a JSONL file.
EXAMPLE_ORIGINS = ("feedback", "message", "manual", "import")


class CuratedExample(Base):
    """An approved answer to a question, kept as plain messages and passages (never a
    model's tokens or chat template), so that any later model can learn from it."""

    __tablename__ = "curated_examples"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    collection: Mapped[str] = mapped_column(String(63), index=True)
    question: Mapped[str] = mapped_column(Text)
    # The conversation before the question: [{"role": "user"|"assistant", "content"}].
    turns: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # What was retrieved: [{"text", "source", "section", "document_id", "content_hash"}],
    # content_hash being the document's when the passage was taken.
    passages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    # The model's own answer when a reviewer corrected it (None: accepted as written).
    model_answer: Mapped[str | None] = mapped_column(Text, default=None)
    origin: Mapped[str] = mapped_column(String(16))  # one of EXAMPLE_ORIGINS
    # The answer it was taken from, if any; no foreign key: an example outlives the
    # conversation (deleting a conversation must not delete what was learned from it).
    message_id: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
    feedback_id: Mapped[int | None] = mapped_column(Integer, default=None)
    rating: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    reviewer: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    # Why it is stale (which source changed or went away); None when it is not.
    stale_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Dataset(Base):
    """An immutable snapshot of curated examples with a fixed train / held-out split.
    Its rows are kept here and in a JSONL file under the data directory."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The collection its examples were taken from (None: every collection).
    collection: Mapped[str | None] = mapped_column(String(63), default=None)
    # sha256 of the JSONL file: the rows, sorted by example id, one canonical JSON each.
    sha256: Mapped[str] = mapped_column(String(64))
    n_examples: Mapped[int] = mapped_column(Integer)
    n_train: Mapped[int] = mapped_column(Integer)
    n_held_out: Mapped[int] = mapped_column(Integer)
    held_out: Mapped[float] = mapped_column(Float)  # the share asked for
    seed: Mapped[int] = mapped_column(Integer)
    # The file, relative to the data directory ("datasets/NAME.jsonl").
    path: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    rows: Mapped[list[DatasetRow]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", order_by="DatasetRow.example_id"
    )


class DatasetRow(Base):
    """One example as a dataset holds it, with the split it was given at build time."""

    __tablename__ = "dataset_rows"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    # The curated example's id; no foreign key: the snapshot keeps its own copy.
    example_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    split: Mapped[str] = mapped_column(String(8))  # train | held-out
    sha256: Mapped[str] = mapped_column(String(64))  # of the row's canonical JSON
    record: Mapped[dict[str, Any]] = mapped_column(JSON)

    dataset: Mapped[Dataset] = relationship(back_populates="rows")


# How an audited action ended: done, refused by a rule (a gate, a scope, a missing row),
# or failed with an error.
AUDIT_OUTCOMES = ("ok", "refused", "failed")


class AuditEvent(Base):
    """One admin action: who, what, when, on what, and how it ended. Append-only: docchat
    never updates or deletes a row (on PostgreSQL a trigger refuses it too), and nothing
    here holds a secret or a message's text (app/store/audit.py)."""

    __tablename__ = "audit_events"
    __table_args__ = (CheckConstraint("outcome IN ('ok', 'refused', 'failed')", name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Typed, never a chosen name: "key:<id>", "cli:<OS user>", "server" (the scheduled
    # purge, the start), "settings", "anonymous" (app/store/audit.py). Rows written before
    # actors were typed hold a key's name.
    actor: Mapped[str] = mapped_column(String(100))
    # Dotted: "key.create", "model.activate", "api.start_reindex", "cli.models.add", ...
    action: Mapped[str] = mapped_column(String(64), index=True)
    # What it acted on: a key's name, a model's, a conversation's id; "" when none.
    target: Mapped[str] = mapped_column(String(300), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # one of AUDIT_OUTCOMES
    # Why it was refused or failed; None when it went through.
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Counts, names of changed settings, flags like forced: never secrets or message text.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
