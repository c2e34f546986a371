"""Curated examples: reviewers accept an answer as written, correct it, or add one by
hand or from a JSONL file. An example keeps the question, the turns before it, the
passages and the approved answer as plain text; nothing tied to today's model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.curation import passages as passages_
from app.curation import staleness
from app.curation.errors import CurationError, NotFound
from app.curation.passages import Passage
from app.store import audit
from app.store.feedback import RATING_NAMES
from app.store.models import CuratedExample, Document, Feedback, Message

Turn = dict[str, str]
Status = Literal["active", "stale", "dropped"]
TEXT_MAX_CHARS = 20_000
# C0/C1 controls but tab and newline, and lone surrogates: what no example needs.
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(text: object, field: str, *, required: bool = True) -> str:
    """A question or an answer as stored: controls dropped, trimmed, bounded."""
    if not isinstance(text, str):
        raise CurationError(f"{field}: must be text")
    cleaned = _UNWANTED.sub("", text.replace("\r\n", "\n")).strip()
    if required and not cleaned:
        raise CurationError(f"{field}: must not be blank")
    if len(cleaned) > TEXT_MAX_CHARS:
        raise CurationError(f"{field}: longer than {TEXT_MAX_CHARS} characters")
    return cleaned


def clean_turns(turns: object) -> list[Turn]:
    """Earlier turns as plain messages: user and assistant, alternating from a user."""
    if turns is None:
        return []
    if not isinstance(turns, list):
        raise CurationError("turns: must be a list of {role, content}")
    kept: list[Turn] = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise CurationError(f"turns[{i}]: must be {{role: user|assistant, content}}")
        kept.append({"role": turn["role"], "content": clean(turn.get("content"), f"turns[{i}]")})
    return kept


def _before(session: Session, message: Message) -> tuple[str, list[Turn]]:
    """The question an answer replies to and the complete turns before it."""
    earlier = session.scalars(
        select(Message)
        .where(Message.conversation_id == message.conversation_id, Message.seq < message.seq)
        .order_by(Message.seq)
    ).all()
    questions = [m for m in earlier if m.role == "user"]
    if not questions:
        raise CurationError("the answer has no question before it")
    question = questions[-1]
    turns: list[Turn] = []
    pending: Message | None = None
    for m in earlier:
        if m.seq >= question.seq:
            break
        if m.role == "user":
            pending = m
        elif pending is not None and m.status == "complete" and m.content.strip():
            turns += [
                {"role": "user", "content": pending.content},
                {"role": "assistant", "content": m.content},
            ]
            pending = None
    return question.content, turns


def from_message(
    session: Session,
    message_id: str,
    *,
    reviewer: str,
    default_collection: str,
    answer: str | None = None,
) -> tuple[CuratedExample, bool]:
    """Accept a stored answer as it is (`answer` None) or with the reviewer's answer;
    the example and whether it is new. Taking the same answer again updates its example."""
    message = session.get(Message, message_id)
    if message is None or message.role != "assistant":
        raise NotFound("no such answer")
    if answer is None:
        if message.status != "complete" or not message.content.strip():
            raise CurationError(
                f"the answer is {message.status} and cannot be accepted as written: correct it"
            )
        approved = message.content.strip()
    else:
        approved = clean(answer, "answer")
    question, turns = _before(session, message)
    taken = passages_.from_citations(session, list(message.citations or []))
    feedback = session.scalar(
        select(Feedback)
        .where(Feedback.message_id == message_id)
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(1)
    )
    documents = [session.get(Document, p["document_id"]) for p in taken if p.get("document_id")]
    collection = next((d.collection for d in documents if d is not None), default_collection)
    example = session.scalar(select(CuratedExample).where(CuratedExample.message_id == message_id))
    created = example is None
    if example is None:
        example = CuratedExample(message_id=message_id)
        session.add(example)
    example.collection = collection
    example.question = question
    example.turns = turns
    example.passages = taken
    example.answer = approved
    example.model_answer = None if answer is None else message.content
    example.origin = "feedback" if feedback is not None else "message"
    example.feedback_id = feedback.id if feedback is not None else None
    example.rating = feedback.rating if feedback is not None else None
    example.comment = feedback.comment if feedback is not None else None
    example.reviewer = reviewer
    example.status = "active"
    example.stale_reason = None
    staleness.mark(session, example)
    session.flush()
    audit.record(
        session,
        reviewer,
        "example.accept" if answer is None else "example.correct",
        example.id,
        detail={"message_id": message_id, "collection": collection, "new": created},
    )
    return example, created


def _source_passages(
    session: Session, collection: str, sources: Iterable[str], like: str
) -> list[Passage]:
    """Passages named by source path: PATH#N takes chunk N, PATH the chunk closest to `like`."""
    taken: list[Passage] = []
    for given in sources:
        source, _, number = given.partition("#")
        document = passages_.find_document(session, collection, source.strip())
        if document is None:
            raise NotFound(f"no document {source!r} in collection {collection!r}")
        if number:
            chunk = next((c for c in document.chunks if str(c.ord) == number.strip()), None)
            if chunk is None:
                raise NotFound(f"{document.source} has no chunk {number}")
        else:
            chunk = passages_.best_chunk(document, like)
            if chunk is None:
                raise CurationError(f"{document.source} has no chunks")
        taken.append(passages_.passage(document, chunk))
    return taken


def _given_passages(session: Session, collection: str, given: object) -> list[Passage]:
    """Passages given as JSON ({text, source, section?}); tied to a document (and its hash)
    when the source names one in the collection."""
    if given is None:
        return []
    if not isinstance(given, list):
        raise CurationError("passages: must be a list of {text, source}")
    taken: list[Passage] = []
    for i, p in enumerate(given):
        if not isinstance(p, dict):
            raise CurationError(f"passages[{i}]: must be an object with text and source")
        text = clean(p.get("text"), f"passages[{i}].text")
        source = str(p.get("source") or "")
        document = passages_.find_document(session, collection, source, p.get("document_id"))
        taken.append(
            {
                "text": text,
                "source": document.source if document else source,
                "title": str(p.get("title") or (document.title if document else "")),
                "section": str(p.get("section") or ""),
                "document_id": document.id if document else None,
                "chunk": p.get("chunk"),
                "content_hash": p.get("content_hash")
                or (document.content_hash if document else None),
            }
        )
    return taken


def add(
    session: Session,
    question: str,
    answer: str,
    *,
    collection: str,
    reviewer: str,
    turns: object = None,
    sources: Iterable[str] = (),
    passages: object = None,
    origin: Literal["manual", "import"] = "manual",
) -> CuratedExample:
    """An example written by a reviewer: the passages come from `sources` (document
    paths in the collection) and/or are given as text."""
    question = clean(question, "question")
    answer = clean(answer, "answer")
    taken = _given_passages(session, collection, passages)
    taken += _source_passages(session, collection, sources, f"{question}\n{answer}")
    example = CuratedExample(
        collection=collection,
        question=question,
        turns=clean_turns(turns),
        passages=taken,
        answer=answer,
        origin=origin,
        reviewer=reviewer,
        status="active",
    )
    session.add(example)
    staleness.mark(session, example)
    session.flush()
    return example


def import_jsonl(
    session: Session, lines: Iterable[str], *, collection: str, reviewer: str
) -> tuple[list[CuratedExample], int]:
    """Examples from JSONL, one {question, answer, turns?, sources?, passages?,
    collection?} per line (a `docchat dataset export --format jsonl` file reads back).
    All or nothing: a bad line refuses the file. Rows already curated (same question and
    answer in the collection) are skipped; the new examples and how many were skipped."""
    added: list[CuratedExample] = []
    skipped = 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CurationError(f"line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CurationError(f"line {n}: must be a JSON object")
        into = str(row.get("collection") or collection)
        try:
            question, answer = (
                clean(row.get("question"), "question"),
                clean(row.get("answer"), "answer"),
            )
            exists = session.scalar(
                select(CuratedExample.id).where(
                    CuratedExample.collection == into,
                    CuratedExample.question == question,
                    CuratedExample.answer == answer,
                    CuratedExample.status != "dropped",
                )
            )
            if exists is not None:
                skipped += 1
                continue
            sources = row.get("sources") or []
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise CurationError("sources: must be a list of paths")
            added.append(
                add(
                    session,
                    question,
                    answer,
                    collection=into,
                    reviewer=reviewer,
                    turns=row.get("turns"),
                    sources=sources,
                    passages=row.get("passages"),
                    origin="import",
                )
            )
        except CurationError as exc:
            raise type(exc)(f"line {n}: {exc}") from None
    return added, skipped


def get(session: Session, example_id: str) -> CuratedExample:
    """One example by id."""
    example = session.get(CuratedExample, example_id)
    if example is None:
        raise NotFound("no such example")
    return example


def listed(
    session: Session,
    *,
    status: Status | None = None,
    collection: str | None = None,
    limit: int = 100,
) -> list[CuratedExample]:
    """Examples, newest first, their staleness checked first; without a status every
    one that is not dropped."""
    staleness.check(session)
    query = select(CuratedExample).order_by(CuratedExample.updated_at.desc(), CuratedExample.id)
    if status is None:
        query = query.where(CuratedExample.status != "dropped")
    else:
        query = query.where(CuratedExample.status == status)
    if collection is not None:
        query = query.where(CuratedExample.collection == collection)
    return list(session.scalars(query.limit(limit)))


def drop(session: Session, example_id: str, *, reviewer: str) -> CuratedExample:
    """Set an example aside: no dataset built later includes it (earlier ones keep it)."""
    example = get(session, example_id)
    example.status, example.stale_reason, example.reviewer = "dropped", None, reviewer
    session.flush()
    audit.record(session, reviewer, "example.drop", example.id)
    return example


def refresh(session: Session, example_id: str, *, reviewer: str) -> CuratedExample:
    """Take the example's passages again from the current chunks of their documents (the
    chunk closest to the old text); a passage whose document is gone is left out. The
    reviewer says the approved answer still holds: the example is active again."""
    example = get(session, example_id)
    if example.status == "dropped":
        raise CurationError("the example was dropped; add it again instead")
    fresh: list[Passage] = []
    gone: list[str] = []
    for p in example.passages:
        if not p.get("document_id") and not p.get("content_hash"):
            fresh.append(p)  # free text: nothing to refresh it from
            continue
        document = passages_.find_document(
            session, example.collection, p.get("source") or "", p.get("document_id")
        )
        chunk = (
            passages_.best_chunk(document, p.get("text") or "", p.get("section") or "")
            if document is not None
            else None
        )
        if document is None or chunk is None:
            gone.append(str(p.get("source") or p.get("document_id")))
            continue
        fresh.append(passages_.passage(document, chunk))
    if example.passages and not fresh:
        raise CurationError(
            "none of its sources exist any more (" + ", ".join(gone) + "): drop the example"
        )
    example.passages = fresh
    example.reviewer = reviewer
    example.status, example.stale_reason = "active", None
    staleness.mark(session, example)
    session.flush()
    return example


def as_dict(example: CuratedExample) -> dict[str, Any]:
    """An example as the API and `--json` show it."""
    return {
        "id": example.id,
        "collection": example.collection,
        "status": example.status,
        "stale_reason": example.stale_reason,
        "question": example.question,
        "turns": example.turns,
        "passages": example.passages,
        "answer": example.answer,
        "model_answer": example.model_answer,
        "origin": example.origin,
        "message_id": example.message_id,
        "feedback_id": example.feedback_id,
        "rating": RATING_NAMES.get(example.rating) if example.rating is not None else None,
        "comment": example.comment,
        "reviewer": example.reviewer or None,
        "created_at": example.created_at.isoformat(),
        "updated_at": example.updated_at.isoformat(),
    }
