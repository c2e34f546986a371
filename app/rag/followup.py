"""Follow-up questions made standalone before retrieval.

"And how do I undo it?" finds nothing useful alone: what "it" is lives in the previous
question. Two ways are offered (rag.followups), measured in docs/retrieval.md:

- rules: a question that reads like a follow-up (it opens with "and", "what about",
  "also"...; it points back with "it", "that", "them"...; or it is a few words long) is
  searched together with the previous question;
- model: the chat model rewrites the question into one that stands alone (a short
  generation before every follow-up's answer; its output is used only if it looks
  like a question and not like an answer).

A question that does not read like a follow-up is searched as asked.
"""

from __future__ import annotations

import re
import time

from app.llm.base import ChatEngine

# Openings that continue the previous question.
_CONTINUES = re.compile(
    r"^\s*(and|but|also|so|then|or|what about|how about|what if|and if|same for|"
    r"instead|what else|why not|can i also|is there also)\b",
    re.IGNORECASE,
)
# Words that point back at something named earlier.
_POINTS_BACK = re.compile(
    r"\b(it|its|it's|that|this|these|those|them|they|there|one|ones|the same|"
    r"afterwards|instead|again|else)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w.-]+")
# A question this short (in words) leans on its context.
SHORT = 5

REWRITE_INSTRUCTION = (
    "Rewrite the user's last question so that it can be understood without the "
    "conversation: replace words like 'it', 'that' or 'this' with what they refer to. "
    "Keep it short. Write only the rewritten question."
)
REWRITE_TOKENS = 48


def reads_like_followup(question: str) -> bool:
    """Whether a question leans on what was asked before."""
    return bool(
        _CONTINUES.search(question)
        or _POINTS_BACK.search(question)
        or len(_WORD.findall(question)) <= SHORT
    )


def standalone_by_rules(question: str, previous: str | None) -> str:
    """The query to search for: the previous question joined in when the question
    reads like a follow-up."""
    if not previous or not reads_like_followup(question):
        return question
    return f"{previous.strip()}\n{question.strip()}"


def newest_question(query: str, previous: str | None) -> str:
    """The question the user asked last, out of a query that standalone_by_rules (or
    the retriever's retry) joined to the previous one: what it asks for is its own."""
    joined = f"{previous.strip()}\n" if previous else ""
    return query[len(joined) :] if joined and query.startswith(joined) else query


async def first_line(
    engine: ChatEngine,
    messages: list[dict[str, str]],
    max_tokens: int,
    deadline: float | None = None,
) -> str:
    """The chat model's first line of text for `messages`, greedy; generation stops as
    soon as that line is complete ("" when the model writes nothing but blanks)."""
    pieces: list[str] = []
    generation = engine.stream(
        engine.format(messages),
        max_tokens=max_tokens,
        temperature=0.0,
        deadline=deadline if deadline is not None else time.monotonic() + 60,
    )
    async for piece in generation:
        pieces.append(piece)
        if "\n" in "".join(pieces).strip():
            break
    await generation.aclose()
    text = "".join(pieces).strip()
    return text.splitlines()[0] if text else ""


async def standalone_by_model(
    engine: ChatEngine, question: str, previous: str | None, *, deadline: float | None = None
) -> str:
    """The chat model's standalone version of a follow-up (the question as asked when
    it does not read like one, or when the model's output is unusable)."""
    if not previous or not reads_like_followup(question):
        return question
    messages = [
        {"role": "system", "content": REWRITE_INSTRUCTION},
        {
            "role": "user",
            "content": f"Earlier question: {previous.strip()}\nLast question: "
            f"{question.strip()}\nRewritten last question:",
        },
    ]
    rewritten = (await first_line(engine, messages, REWRITE_TOKENS, deadline)).strip(' "')
    if not rewritten or len(rewritten) > 4 * max(len(question), len(previous)):
        return standalone_by_rules(question, previous)
    return rewritten


async def standalone(
    mode: str, engine: ChatEngine, text: str, previous: str | None, deadline: float
) -> str:
    """What to search for: a follow-up made standalone as `mode` (rag.followups) says."""
    if not previous or mode == "off":
        return text
    if mode == "model":
        return await standalone_by_model(engine, text, previous, deadline=deadline)
    return standalone_by_rules(text, previous)
