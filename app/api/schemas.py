"""The response shapes more than one router answers with (a feature's own live in its
route module): the routes return these, so the OpenAPI document describes the real
responses."""

from __future__ import annotations

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


class FeedbackOut(BaseModel):
    """One rating of an answer."""

    message_id: str
    rating: str = Field(description='"up" or "down".')
    comment: str | None
    given_by: str | None = Field(description="The name of the key that rated (never the key).")
    created_at: str


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


class DeletedOut(BaseModel):
    """What a deletion or a purge removed (or, dry, would remove)."""

    conversations: int
    messages: int
    feedback: int
    dry_run: bool = False
