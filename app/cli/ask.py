"""`docchat ask`: one answer in the terminal, with its sources."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer

from app.cli.common import console, fail, load, say

# Written between a streamed answer that the checks withdrew and what is given instead.
WITHDRAWN = "[Withdrawn: the text above did not pass docchat's checks. Instead:]"
# Written under an answer the model did not finish (the chat page's words).
UNFINISHED = {
    "length": "[The answer reached its length limit and stops here, unfinished.]",
    "repetition": "[The answer began repeating itself and was stopped here.]",
}


def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Annotated[str | None, typer.Option(help="Collection to search.")] = None,
) -> None:
    """Answer one question from the terminal, with its sources.

    Example: docchat ask "How do I install docchat?"
    """
    from app.components import build_components
    from app.security.secrets import ConfigError
    from app.store.index_record import EmbeddingMismatch
    from app.store.vectors import VectorStoreBusy

    settings = load()
    try:
        components = build_components(settings, writer=False)
    except (VectorStoreBusy, ConfigError, EmbeddingMismatch) as exc:
        raise fail(str(exc)) from None

    from app.chat.events import Failed, Finished, Token
    from app.chat.question import Question
    from common.errors import DocchatError

    # On a terminal the answer streams as it is written; when the checks then withdraw
    # it, it stays on the screen, so it is marked withdrawn above what replaces it.
    # Anywhere else (a pipe, a script) only the answer as finally given is written,
    # as the API's non-streaming reply gives it.
    streaming = sys.stdout.isatty()

    async def run() -> list[dict[str, Any]]:
        answer = await components.chat.open(Question(question, store=False, collection=collection))
        async for event in answer.events():
            if isinstance(event, Token) and streaming:
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, Finished) and not streaming:
                sys.stdout.write(event.text)
            elif isinstance(event, Finished) and event.notice:
                sys.stdout.write("\n\n" + WITHDRAWN + "\n\n" + event.notice)
            elif isinstance(event, Failed):
                raise event.error
            if isinstance(event, Finished) and not event.notice:
                # A cut answer reads as complete unless it says so (a notice is whole).
                cut = UNFINISHED.get(event.finish_reason or "")
                if cut:
                    sys.stdout.write("\n\n" + cut)
        sys.stdout.write("\n")
        return [c.as_dict() for c in answer.started.citations]

    try:
        sources = asyncio.run(run())
    except DocchatError as exc:  # a refusal or failure: its message is written to be shown
        raise fail(str(exc)) from None
    finally:
        components.close()
    if sources:
        console.print("\n[bold]Sources[/]")
        for c in sources:
            section = f" — {c['section']}" if c["section"] else ""
            say(f"  [{c['n']}] {c['source']}{section} (score {c['score']:.2f})")
