"""Curated answers and datasets over HTTP (admin scope): review rated answers, accept or
correct them, add, refresh and drop examples; build, show, diff and export datasets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.deps import IdentityDep, SessionDep, SettingsDep, admin_scope, feedback_name
from app.api.errors import ERROR_RESPONSES
from app.curation import datasets, examples, export, review, staleness
from app.curation.examples import TEXT_MAX_CHARS

router = APIRouter(prefix="/api/admin", tags=["curation"], dependencies=admin_scope())


class Turn(BaseModel):
    """A message of the conversation before the question."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=TEXT_MAX_CHARS)


class PassageIn(BaseModel):
    """A passage given as text; tied to a document when `source` names one."""

    text: str = Field(max_length=TEXT_MAX_CHARS)
    source: str = ""
    section: str = ""


class PassageOut(BaseModel):
    """A passage as an example keeps it."""

    text: str
    source: str
    title: str = ""
    section: str = ""
    document_id: str | None = None
    chunk: int | None = None
    content_hash: str | None = Field(None, description="The document's hash when taken.")


class ExampleOut(BaseModel):
    """A curated example: plain messages and passages, and where it came from."""

    id: str
    collection: str
    status: str = Field(description="active, stale or dropped.")
    stale_reason: str | None
    question: str
    turns: list[Turn]
    passages: list[PassageOut]
    answer: str
    model_answer: str | None = Field(description="The model's answer, when corrected.")
    origin: str = Field(description="feedback, message, manual or import.")
    message_id: str | None
    feedback_id: int | None
    rating: str | None
    comment: str | None
    reviewer: str | None
    created_at: str
    updated_at: str


class CorrectRequest(BaseModel):
    """The answer a reviewer approves in place of the model's."""

    answer: str = Field(min_length=1, max_length=TEXT_MAX_CHARS)


class AddRequest(BaseModel):
    """An example written by hand."""

    question: str = Field(min_length=1, max_length=TEXT_MAX_CHARS)
    answer: str = Field(min_length=1, max_length=TEXT_MAX_CHARS)
    turns: list[Turn] = Field(default_factory=list)
    sources: list[str] = Field(
        default_factory=list, description="Document paths (PATH or PATH#N for chunk N)."
    )
    passages: list[PassageIn] = Field(default_factory=list)
    collection: str | None = Field(None, description="Default: vectors.collection.")


class ReviewItem(BaseModel):
    """A rated answer beside its question, passages, rating and example."""

    feedback_id: int
    message_id: str
    rating: str
    comment: str | None
    given_by: str | None
    rated_at: str
    question: str | None
    answer: str
    answer_status: str
    finish_reason: str | None = Field(
        None,
        description="How the answer ended: stop, or length and repetition for one the "
        "model did not finish (correct it rather than accept it); null where not recorded.",
    )
    passages: list[PassageOut]
    example_id: str | None
    example_status: str | None


class BuildRequest(BaseModel):
    """How to build a dataset."""

    name: str = Field(description="A new name: datasets are immutable.")
    collection: str | None = Field(None, description="Only this collection (default: all).")
    held_out: float = Field(0.2, ge=0, lt=1, description="Share held out for evaluation.")
    seed: int = Field(0, description="Seed of the split.")


class DatasetOut(BaseModel):
    """A dataset: hash, counts, split and file."""

    name: str
    collection: str | None
    sha256: str
    n_examples: int
    n_train: int
    n_held_out: int
    held_out: float
    seed: int
    path: str
    file_ok: bool = Field(description="The file is there and has the recorded hash.")
    created_by: str | None
    created_at: str


class DiffRow(BaseModel):
    """An example in a diff."""

    id: str
    question: str | None
    split: str
    fields: list[str] = Field(default_factory=list, description="What changed (changed only).")


class DiffOut(BaseModel):
    """What changed from dataset a to dataset b."""

    a: str
    b: str
    added: list[DiffRow]
    removed: list[DiffRow]
    changed: list[DiffRow]
    unchanged: int


def _out(example: Any) -> ExampleOut:
    return ExampleOut.model_validate(examples.as_dict(example))


@router.get("/review", responses=ERROR_RESPONSES)
def review_list(
    session: SessionDep,
    rating: Annotated[Literal["up", "down"] | None, Query(description="Only up or down.")] = None,
    pending: Annotated[bool, Query(description="Only answers not curated yet.")] = False,
    limit: Annotated[int, Query(ge=1, le=500, description="How many, newest first.")] = 50,
) -> list[ReviewItem]:
    """Rated answers with the question, the whole answer, its passages and its example."""
    items = review.rated(session, rating=rating, pending=pending, limit=limit)
    return [ReviewItem.model_validate(i) for i in items]


@router.get("/examples", responses=ERROR_RESPONSES)
def list_examples(
    session: SessionDep,
    status: Annotated[
        Literal["active", "stale", "dropped"] | None,
        Query(description="Only this status (default: all but dropped)."),
    ] = None,
    collection: Annotated[str | None, Query(description="Only this collection.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many, newest first.")] = 100,
) -> list[ExampleOut]:
    """Curated examples, their staleness checked first."""
    found = examples.listed(session, status=status, collection=collection, limit=limit)
    return [_out(e) for e in found]


@router.post("/examples", status_code=201, responses=ERROR_RESPONSES)
def add_example(
    request: AddRequest, session: SessionDep, settings: SettingsDep, identity: IdentityDep
) -> ExampleOut:
    """Add an example by hand; its passages from `sources` and/or `passages`."""
    example = examples.add(
        session,
        request.question,
        request.answer,
        collection=request.collection or settings.vectors.collection,
        reviewer=feedback_name(identity),
        turns=[t.model_dump() for t in request.turns],
        sources=request.sources,
        passages=[p.model_dump() for p in request.passages],
    )
    return _out(example)


@router.get("/examples/{example_id}", responses=ERROR_RESPONSES)
def get_example(example_id: str, session: SessionDep) -> ExampleOut:
    """One example (its staleness checked)."""
    example = examples.get(session, example_id)
    staleness.mark(session, example)
    return _out(example)


@router.post("/examples/{example_id}/drop", responses=ERROR_RESPONSES)
def drop_example(example_id: str, session: SessionDep, identity: IdentityDep) -> ExampleOut:
    """Set an example aside: datasets built from now on leave it out."""
    return _out(examples.drop(session, example_id, reviewer=feedback_name(identity)))


@router.post("/examples/{example_id}/refresh", responses=ERROR_RESPONSES)
def refresh_example(example_id: str, session: SessionDep, identity: IdentityDep) -> ExampleOut:
    """Take the example's passages again from the current documents; active again."""
    return _out(examples.refresh(session, example_id, reviewer=feedback_name(identity)))


@router.post("/messages/{message_id}/accept", responses=ERROR_RESPONSES)
def accept_answer(
    message_id: str, session: SessionDep, settings: SettingsDep, identity: IdentityDep
) -> ExampleOut:
    """Accept an answer as written: it becomes (or updates) a curated example."""
    example, _ = examples.from_message(
        session,
        message_id,
        reviewer=feedback_name(identity),
        default_collection=settings.vectors.collection,
    )
    return _out(example)


@router.post("/messages/{message_id}/correct", responses=ERROR_RESPONSES)
def correct_answer(
    message_id: str,
    request: CorrectRequest,
    session: SessionDep,
    settings: SettingsDep,
    identity: IdentityDep,
) -> ExampleOut:
    """Approve the reviewer's answer in place of the model's (kept as model_answer)."""
    example, _ = examples.from_message(
        session,
        message_id,
        reviewer=feedback_name(identity),
        default_collection=settings.vectors.collection,
        answer=request.answer,
    )
    return _out(example)


@router.get("/datasets", responses=ERROR_RESPONSES)
def list_datasets(session: SessionDep, settings: SettingsDep) -> list[DatasetOut]:
    """Every dataset, newest first."""
    return [
        DatasetOut.model_validate(s.info()) for s in datasets.listed(session, settings.data_dir)
    ]


@router.post("/datasets", status_code=201, responses=ERROR_RESPONSES)
def build_dataset(
    request: BuildRequest, session: SessionDep, settings: SettingsDep, identity: IdentityDep
) -> DatasetOut:
    """Snapshot the active examples as a new dataset (409 if the name exists)."""
    built = datasets.build(
        session,
        settings.data_dir,
        request.name,
        collection=request.collection,
        held_out=request.held_out,
        seed=request.seed,
        created_by=feedback_name(identity),
    )
    return DatasetOut.model_validate(built.info())


@router.get("/datasets/{name}", responses=ERROR_RESPONSES)
def get_dataset(name: str, session: SessionDep, settings: SettingsDep) -> DatasetOut:
    """A dataset's hash, counts, split and file."""
    snapshot = datasets.snapshot(datasets.get(session, name), settings.data_dir, with_rows=False)
    return DatasetOut.model_validate(snapshot.info())


@router.get("/datasets/{name}/diff/{other}", responses=ERROR_RESPONSES)
def diff_datasets(name: str, other: str, session: SessionDep) -> DiffOut:
    """What changed from dataset `name` to dataset `other`."""
    return DiffOut.model_validate(datasets.diff(session, name, other))


@router.get(
    "/datasets/{name}/export",
    responses={**ERROR_RESPONSES, 200: {"content": {"application/x-ndjson": {}}}},
    response_class=StreamingResponse,
)
def export_dataset(
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[export.Format, Query(description="openai-chat or jsonl.")] = "openai-chat",
    split: Annotated[Literal["train", "held-out", "all"], Query(description="Which rows.")] = "all",
) -> StreamingResponse:
    """The dataset as JSONL (openai-chat: what OpenAI fine-tuning and TRL read)."""
    snapshot = datasets.load(session, settings.data_dir, name)
    return StreamingResponse(
        iter(list(export.lines(snapshot, format, split))),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}-{split}.jsonl"'},
    )
