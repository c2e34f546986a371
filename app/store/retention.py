"""Retention and deletion: conversations (with their messages and feedback) deleted on
request or once older than the retention, and old feedback on its own.

Deleted means gone from the database: the rows are deleted, not flagged. Curated
examples are never touched: they have no foreign key to messages and keep their own copy
of what was approved (app/store/models.py). Every purge or deletion that removed
something, and every one asked for by a person, is in the audit trail with its counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.store import audit
from app.store.db import Database
from app.store.keys import find_key
from app.store.models import ApiKey, Conversation, Feedback, Message, utcnow

log = logging.getLogger(__name__)

# Rows deleted per statement: bounded IN lists, short locks.
BATCH = 500
# The longest age a purge takes (a century): a longer one reaches before any record,
# and past about 2,000 years "now minus the age" is no date at all (OverflowError).
MAX_DAYS = 36_500


@dataclass
class Counts:
    """What a purge or a deletion removed (or, dry, would remove)."""

    conversations: int = 0
    messages: int = 0
    feedback: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.conversations += other.conversations
        self.messages += other.messages
        self.feedback += other.feedback
        return self

    @property
    def total(self) -> int:
        """Rows in all."""
        return self.conversations + self.messages + self.feedback

    def as_dict(self) -> dict[str, int]:
        """JSON-ready."""
        return asdict(self)


def _batches(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def delete_conversations(session: Session, ids: Sequence[str], *, dry_run: bool = False) -> Counts:
    """Delete these conversations with their messages and the feedback on them (or,
    dry, count what would go)."""
    counts = Counts()
    for batch in _batches(list(ids)):
        messages = select(Message.id).where(Message.conversation_id.in_(batch))
        counts.feedback += (
            session.scalar(select(func.count()).where(Feedback.message_id.in_(messages))) or 0
        )
        counts.messages += (
            session.scalar(select(func.count()).where(Message.conversation_id.in_(batch))) or 0
        )
        counts.conversations += (
            session.scalar(select(func.count()).where(Conversation.id.in_(batch))) or 0
        )
        if dry_run:
            continue
        # Children first: the same on every database, whatever its foreign-key cascades.
        session.execute(
            delete(Feedback).where(Feedback.message_id.in_(messages)),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            delete(Message).where(Message.conversation_id.in_(batch)),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            delete(Conversation).where(Conversation.id.in_(batch)),
            execution_options={"synchronize_session": False},
        )
    return counts


def conversations_older_than(session: Session, cutoff: datetime) -> list[str]:
    """Ids of the conversations whose last message (or, with none, whose start) is
    before `cutoff`."""
    last = (
        select(Message.conversation_id, func.max(Message.created_at).label("last"))
        .group_by(Message.conversation_id)
        .subquery()
    )
    activity = func.coalesce(last.c.last, Conversation.created_at)
    query = (
        select(Conversation.id)
        .outerjoin(last, last.c.conversation_id == Conversation.id)
        .where(activity < cutoff)
        .order_by(Conversation.id)
    )
    return list(session.scalars(query))


def purge(
    session: Session,
    *,
    conversations_before: datetime | None,
    feedback_before: datetime | None = None,
    dry_run: bool = False,
) -> Counts:
    """Delete conversations inactive since `conversations_before` and feedback given
    before `feedback_before` (None: that kind is kept). Curated examples stay."""
    counts = Counts()
    if conversations_before is not None:
        ids = conversations_older_than(session, conversations_before)
        counts += delete_conversations(session, ids, dry_run=dry_run)
    if feedback_before is not None:
        old = Feedback.created_at < feedback_before
        counts.feedback += session.scalar(select(func.count()).where(old)) or 0
        if not dry_run:
            session.execute(
                delete(Feedback).where(old), execution_options={"synchronize_session": False}
            )
    return counts


def key_conversations(session: Session, key: str) -> tuple[ApiKey, list[str]]:
    """An API key (by name or id, revoked ones too) and the ids of the conversations it
    started; LookupError when there is no such key."""
    row = find_key(session, key)
    if row is None:
        raise LookupError(f"no key named or with id {key!r}")
    ids = list(session.scalars(select(Conversation.id).where(Conversation.owner == row.id)))
    return row, ids


def delete_for_key(session: Session, key: str, *, dry_run: bool = False) -> Counts:
    """Delete every conversation a key started and every rating it gave (anywhere)."""
    row, ids = key_conversations(session, key)
    counts = delete_conversations(session, ids, dry_run=dry_run)
    given = Feedback.given_by == row.name
    counts.feedback += session.scalar(select(func.count()).where(given)) or 0
    if not dry_run:
        session.execute(
            delete(Feedback).where(given), execution_options={"synchronize_session": False}
        )
    return counts


def cutoff(days: float, now: datetime | None = None) -> datetime | None:
    """The moment before which rows are older than `days` (None: 0 days, kept forever)."""
    return (now or utcnow()) - timedelta(days=days) if days > 0 else None


class Purger:
    """The server's scheduled purge: every `interval_s`, what the retention settings
    say has expired is deleted, and recorded in the audit trail when anything was."""

    def __init__(
        self, db: Database, *, conversation_days: float, feedback_days: float, interval_s: float
    ) -> None:
        self.db = db
        self.conversation_days = conversation_days
        self.feedback_days = feedback_days
        self.interval_s = interval_s

    @property
    def enabled(self) -> bool:
        """Whether any retention is set."""
        return self.conversation_days > 0 or self.feedback_days > 0

    def run_once(self) -> Counts:
        """One purge, now."""
        conversations_before = cutoff(self.conversation_days)
        feedback_before = cutoff(self.feedback_days)
        with self.db.session() as session:
            counts = purge(
                session,
                conversations_before=conversations_before,
                feedback_before=feedback_before,
            )
            if counts.total:
                audit.record(
                    session,
                    audit.SERVER,
                    "conversations.purge",
                    "retention",
                    detail={
                        **counts.as_dict(),
                        "scheduled": True,
                        "conversation_days": self.conversation_days,
                        "feedback_days": self.feedback_days,
                    },
                )
        if counts.total:
            log.info(
                "purge removed %d conversations, %d messages, %d ratings",
                counts.conversations,
                counts.messages,
                counts.feedback,
            )
        return counts

    async def run(self) -> None:
        """Purge now and every interval until cancelled; a failed run is logged and the
        next one tried."""
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("scheduled purge failed")
            await asyncio.sleep(self.interval_s)
