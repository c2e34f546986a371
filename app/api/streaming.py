"""Framing helpers shared by the answer routes: server-sent events, and work that
stops when the client hangs up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request

from app.chat.events import Failed, Finished
from app.chat.question import Question
from app.chat.service import Answer, ChatService

T = TypeVar("T")


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _disconnected(request: Request) -> None:
    # The body is read already: the next message is the disconnect (or, on a test
    # client, whatever comes once the response is complete).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def until_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """The result of `work`, or None when the client hangs up first: `work` is then
    cancelled, so an answer nobody waits for stops at the model's next step."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()  # its cleanup (the stored outcome) runs before it ends
        await asyncio.gather(watcher, task, return_exceptions=True)
    if task.cancelled():
        return None
    return task.result()


class ClientLeft(Exception):
    """The client hung up before its answer was ready (logged as 499)."""


async def admitted(request: Request, chat: ChatService, question: Question) -> Answer:
    """The opened answer. Every refusal (a full queue included) is raised here, before
    any byte of the response is sent."""
    answer = await until_disconnected(request, chat.open(question))
    if answer is None:
        raise ClientLeft
    return answer


async def finished(request: Request, answer: Answer) -> Finished:
    """The whole answer, for the routes that send one JSON body; a failure after
    admission is raised as its error."""
    outcome = await until_disconnected(request, answer.result())
    if outcome is None:
        raise ClientLeft
    if isinstance(outcome, Failed):
        raise outcome.error
    return outcome
