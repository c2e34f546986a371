"""Which collection a question is answered from, and whether its caller may read it."""

from __future__ import annotations

import asyncio

from app.access.policy import CollectionAccess, CollectionNotFound
from app.chat.errors import ConversationElsewhere
from app.chat.question import Question
from app.chat.records import ChatRecords, Earlier


async def collection_of(
    question: Question,
    records: ChatRecords,
    access: CollectionAccess | None,
    default: str,
    turns: int,
) -> tuple[str, Earlier | None]:
    """The collection a question is answered from (the one it names, else its
    conversation's, else `default`), checked against the caller's readers before
    anything is retrieved (CollectionNotFound), and the earlier turns of the
    conversation it continues (at most `turns`). A conversation keeps its collection:
    naming another is refused (ConversationElsewhere)."""
    earlier = None
    named = question.collection
    if question.conversation_id is not None:
        earlier = await asyncio.to_thread(
            records.history, question.conversation_id, question.caller, turns
        )
        kept = earlier.collection or default
        if named is not None and named != kept:
            raise ConversationElsewhere(kept)
        named = kept
    name = named or default
    if access is not None:
        await asyncio.to_thread(access.check, question.caller, name)
    elif name != default:  # a service over one retriever answers from it alone
        raise CollectionNotFound(name)
    return name, earlier
