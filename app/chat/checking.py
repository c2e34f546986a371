"""The checks a finished answer goes through before it is shown: how much of it the
passages support (grounding score), whether every exact term it names is in them
(rag.check_terms), whether it says more than the question's own words
(rag.check_restated), how sure the model was of it (rag.min_confidence), and each
sentence's supporting passage sentence (rag.sentence_support)."""

from __future__ import annotations

import asyncio

from app.chat.events import AnswerChecks
from app.llm.embedder import Embed
from app.rag.confidence import confidence
from app.rag.grounding import grounding_score, restates_question
from app.rag.support import support_field
from app.rag.terms import unpaired_terms
from app.settings import RagSettings
from app.store.vectors import Hit
from app.telemetry.reporter import Telemetry


async def check_answer(
    rag: RagSettings,
    telemetry: Telemetry,
    embed: Embed,
    text: str,
    hits: list[Hit],
    question: str,
    *,
    with_support: bool = True,
    logprobs: list[float] | None = None,
    floor: float | None = None,
) -> AnswerChecks:
    """The verdict: grounded when the score reaches rag.grounding_threshold, every term
    is found, the answer is more than the question restated and the model's
    confidence (from `logprobs`, the answer's tokens') reaches `floor`; with_support,
    each sentence's support."""
    with telemetry.stage("check") as span:
        score, _detail = await asyncio.to_thread(grounding_score, text, hits, embed, question)
        span.set_attribute("docchat.grounding_score", score)
    telemetry.metrics.grounding_score.observe(score)
    unsupported = None
    if rag.check_terms:
        unsupported = unpaired_terms(question, text, [h.text for h in hits])
    sure = confidence(logprobs or [])
    unsure = floor is not None and sure is not None and sure < floor
    failed = {
        "grounding": score < rag.grounding_threshold,
        "terms": bool(unsupported),
        "restates": rag.check_restated and restates_question(question, text),
        "confidence": unsure,
    }
    flagged = [name for name, failing in failed.items() if failing]
    on = rag.sentence_support and with_support
    support = await support_field(text, hits, embed) if on else None
    return AnswerChecks(
        grounding_score=round(score, 4),
        grounded=not flagged,
        flagged_by=flagged or None,
        unsupported_terms=unsupported or None,
        support=support,
        confidence=None if sure is None else round(sure, 4),
    )
