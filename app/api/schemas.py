"""The shapes of what the API answers with: the routes return these, so the OpenAPI
document describes the real responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CitationOut(BaseModel):
    """A source of the answer, numbered as the answer refers to it ([1] first)."""

    n: int
    source: str = Field(description="The file, relative to the ingested folder.")
    title: str
    section: str
    score: float = Field(description="Cosine similarity of the chunk to the question.")
    document_id: str
    chunk: int
    url: str = Field(description="Where the chat page shows the chunk in its document.")


class UsageOut(BaseModel):
    """Tokens the answer cost."""

    prompt_tokens: int
    completion_tokens: int


class ReleaseOut(BaseModel):
    """The model (and adapter) that wrote an answer."""

    model: str = Field(description='The name it is served under ("base+adapter" with one).')
    model_sha256: str | None = Field(
        description="The model file's sha256, first 12 hex digits (null: a model server's)."
    )
    adapter_sha256: str | None = Field(
        description="The adapter file's sha256, first 12 hex digits (null: none applied)."
    )


class ChatAnswer(BaseModel):
    """A finished answer (the JSON response, and the data of the `done` event)."""

    conversation_id: str
    message_id: str
    answer: str
    answered_from_docs: bool
    citations: list[CitationOut]
    grounded: bool | None
    grounding_score: float | None
    checks: dict[str, Any] = Field(
        description="The checks the answer went through: retrieval_score, "
        "grounding_score, grounded, and blocked (why it was withheld)."
    )
    usage: UsageOut
    release: ReleaseOut


class FeedbackOut(BaseModel):
    """One rating of an answer."""

    message_id: str
    rating: str = Field(description='"up" or "down".')
    comment: str | None
    given_by: str | None = Field(description="The name of the key that rated (never the key).")
    created_at: str


class ReviewCitation(BaseModel):
    """A source of a rated answer, as the review list shows it."""

    source: str | None
    title: str | None
    section: str | None
    score: float | None
    url: str | None


class FeedbackReviewItem(FeedbackOut):
    """A rating with the question, the answer and its sources: what to fix in the docs."""

    conversation_id: str
    question: str | None
    answer_excerpt: str
    answer_status: str
    answered_from_docs: bool | None
    grounding_score: float | None
    citations: list[ReviewCitation]


class MessageOut(BaseModel):
    """A question or an answer of a conversation."""

    id: str
    role: str = Field(description='"user" or "assistant".')
    content: str
    status: str = Field(description="complete, streaming, cancelled, blocked or error.")
    citations: list[CitationOut]
    answered_from_docs: bool | None
    checks: dict[str, Any]
    created_at: str
    feedback: FeedbackOut | None = Field(description="The caller's own rating of it.")


class ConversationOut(BaseModel):
    """A conversation with its messages, oldest first."""

    id: str
    title: str
    created_at: str
    messages: list[MessageOut]


class ChunkOut(BaseModel):
    """One chunk of a document, in reading order."""

    ord: int
    section: str
    text: str


class DocumentOut(BaseModel):
    """A stored document: what a citation links to."""

    id: str
    collection: str
    source: str
    title: str
    updated_at: str
    chunks: list[ChunkOut]


class KeyOut(BaseModel):
    """An API key as admins see it: never the key or its hash."""

    id: str
    name: str
    scope: str
    state: str = Field(description="active, expired or revoked.")
    created_at: str
    last_used_at: str | None
    expires_at: str | None


class Revoked(BaseModel):
    """The key that was revoked."""

    revoked: str


class RunFindingOut(BaseModel):
    """A data-quality finding of a stored ingest run."""

    source: str
    severity: str
    reason: str


class IngestRunOut(BaseModel):
    """An ingest run and its summary."""

    id: int
    collection: str
    status: str
    dry_run: bool
    started_at: str
    finished_at: str | None
    counts: dict[str, int] = Field(description="Files per outcome (new, changed, ...).")
    chunks_written: int
    seconds: float
    # The run's findings, under the name clients have always read.
    issues: list[RunFindingOut]


class FindingOut(BaseModel):
    """A data-quality finding of an upload's ingest."""

    source: str
    check: str
    severity: str
    reason: str


class UploadResult(BaseModel):
    """What ingesting an upload did."""

    run_id: int | None
    status: str
    new: int
    changed: int
    unchanged: int
    failed: int
    quarantined: int
    chunks_written: int
    findings: list[FindingOut]
    outcomes: dict[str, str] = Field(description="Each uploaded file's outcome.")


class Health(BaseModel):
    """The process answers."""

    status: str


class Readiness(BaseModel):
    """Whether the server can answer, with each dependency's check."""

    status: str = Field(description='"ready" or "unavailable".')
    checks: dict[str, str]


class ModelOut(BaseModel):
    """A model in OpenAI's list shape."""

    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """OpenAI's /v1/models response."""

    object: str = "list"
    data: list[ModelOut]


class AuditEventOut(BaseModel):
    """One admin action in the audit trail (read only: the API cannot change it)."""

    id: int
    created_at: str
    actor: str = Field(description='A key\'s name, "cli:<OS user>", "server" or "anonymous".')
    action: str = Field(description='What was done, e.g. "key.revoke", "model.activate".')
    target: str = Field(description="What it was done to: a key, a model, a conversation.")
    outcome: str = Field(description='"ok", "refused" or "failed".')
    reason: str | None = Field(description="Why it was refused or failed.")
    detail: dict[str, Any] = Field(
        description="Counts, hashes and flags; never secrets or message text."
    )


class DeletedOut(BaseModel):
    """What a deletion or a purge removed (or, dry, would remove)."""

    conversations: int
    messages: int
    feedback: int
    dry_run: bool = False
