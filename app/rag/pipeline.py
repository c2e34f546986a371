"""The answer pipeline: retrieve, fit the prompt to the context, generate, check."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from app.llm.base import ChatEngine, GenerationStats, Prompt, PromptTooLong
from app.rag.grounding import grounding_score
from app.rag.prompt import NO_CONTEXT_ANSWER, build_messages, system_prompt
from app.rag.retrieval import Citation, Retriever, citations
from app.security.output_guard import WITHHELD_ANSWER, OutputGuard
from app.store.vectors import Hit
from app.telemetry.telemetry import Telemetry


class QuestionTooLong(ValueError):
    """A question over the configured length; refused before any work is done."""


UNGROUNDED_ANSWER = (
    "The documentation does not clearly cover this question: the answer I drafted was "
    "not supported by the passages I found. The closest sources are listed below."
)


@dataclass
class PreparedAnswer:
    """Everything decided before the first token: sources and the exact prompt."""

    hits: list[Hit]
    prompt: Prompt | None  # None: nothing relevant was found, no model call
    max_tokens: int
    stats: GenerationStats = field(default_factory=GenerationStats)
    # Results of the answer checks (grounding, retrieval score, a block), stored with it.
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        """Whether the output guard withheld the answer."""
        return "blocked" in self.checks

    @property
    def answered_from_docs(self) -> bool:
        """Whether the answer is built on retrieved documentation."""
        return self.prompt is not None

    @property
    def grounded(self) -> bool | None:
        """The grounding verdict (None until checked, and for no-context answers)."""
        value = self.checks.get("grounded")
        return None if value is None else bool(value)

    @property
    def verdict(self) -> str:
        """One word for the metrics: grounded, ungrounded, no_context, blocked, unchecked."""
        if self.blocked:
            return "blocked"
        if not self.answered_from_docs:
            return "no_context"
        if self.grounded is None:
            return "unchecked"
        return "grounded" if self.grounded else "ungrounded"

    @property
    def citations(self) -> list[Citation]:
        """The sources given to the model, numbered as in the prompt."""
        return citations(self.hits)


class Answerer:
    """Turns a question (and earlier turns) into a streamed, checked, cited answer."""

    def __init__(
        self,
        retriever: Retriever,
        engine: ChatEngine,
        *,
        max_tokens: int,
        guard: OutputGuard,
        grounding_threshold: float = 0.5,
        ungrounded_action: Literal["flag", "replace"] = "flag",
        max_question_chars: int | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.retriever = retriever
        self.engine = engine
        self.max_tokens = max_tokens
        self.guard = guard
        self.grounding_threshold = grounding_threshold
        self.ungrounded_action = ungrounded_action
        self.max_question_chars = max_question_chars
        self.telemetry = telemetry or retriever.telemetry
        self.system = system_prompt(guard.canary)

    def shared_prefix(self) -> Prompt:
        """The tokens every prompt starts with (the system turn in the model's template),
        for the engine to evaluate once and reuse."""
        # Two chats that differ from the first character of the user turn: what they
        # share is the system turn and the user header, a prefix of every real prompt.
        system = {"role": "system", "content": self.system}
        a = self.engine.format([system, {"role": "user", "content": "A"}])
        b = self.engine.format([system, {"role": "user", "content": "Z"}])
        n = 0
        while n < min(len(a.tokens), len(b.tokens)) and a.tokens[n] == b.tokens[n]:
            n += 1
        return Prompt(a.text, a.tokens[:n], [])

    async def prepare(
        self,
        question: str,
        history: list[tuple[str, str]],
        *,
        previous_question: str | None = None,
        extra_system: str = "",
        max_tokens: int | None = None,
    ) -> PreparedAnswer:
        """Retrieve and build a prompt that fits, for every caller alike.

        Raises QuestionTooLong before any work, EngineBusy when the model's queue is
        full (a question the docs do not cover needs no model), and PromptTooLong when
        no prompt fits the context.
        """
        limit = self.max_question_chars
        if limit is not None and len(question) > limit:
            raise QuestionTooLong(f"the question is longer than {limit} characters")
        hits = await self.retriever.relevant(question, previous_question)
        budget = min(max_tokens or self.max_tokens, self.max_tokens)
        if not hits:
            return PreparedAnswer([], None, budget)
        self.engine.ensure_capacity()
        prompt, hits = await asyncio.to_thread(
            self._fit, question, hits, history, extra_system, budget
        )
        prepared = PreparedAnswer(hits, prompt, budget)
        prepared.checks["retrieval_score"] = round(hits[0].score, 4)
        return prepared

    def _fit(
        self,
        question: str,
        hits: list[Hit],
        history: list[tuple[str, str]],
        extra_system: str,
        max_tokens: int,
    ) -> tuple[Prompt, list[Hit]]:
        """Drop the oldest turns, then the weakest excerpts, until the prompt fits."""
        history = list(history)
        while True:
            messages = build_messages(self.system, question, hits, history, extra_system)
            prompt = self.engine.format(messages)
            try:
                self.engine.check_fits(prompt, max_tokens)
                return prompt, hits
            except PromptTooLong:
                if history:
                    history = history[2:]
                elif len(hits) > 1:
                    hits = hits[:-1]
                else:
                    raise

    async def stream(
        self, prepared: PreparedAnswer, *, temperature: float | None = None
    ) -> AsyncIterator[str]:
        """The answer's text in pieces, as the model writes it, after the output guard;
        once it is complete, the answer checks fill `prepared.checks`.

        A withheld answer ends early; the caller then shows `final_text` instead of what
        it streamed, as it does for an ungrounded answer under the "replace" policy.
        """
        if prepared.prompt is None:
            for piece in re.findall(r"\S+\s*", NO_CONTEXT_ANSWER):
                yield piece
            prepared.stats.finish_reason = "stop"
            self.telemetry.answer_done("no_context", None)
            return
        # Not made current: a span current across `yield`s would leak its context.
        span = self.telemetry.tracer.start_span("generate")
        generated = self.engine.stream(
            prepared.prompt,
            max_tokens=prepared.max_tokens,
            temperature=temperature,
            stats=prepared.stats,
        )
        pieces: list[str] = []
        try:
            async for piece in self.guard.filter(generated, prepared.checks):
                pieces.append(piece)
                yield piece
        finally:
            self._record_generation(prepared, span)
        if prepared.blocked:
            prepared.stats.finish_reason = "content_filter"
        else:
            await self.check(prepared, "".join(pieces))
        top = prepared.hits[0].score if prepared.hits else None
        self.telemetry.answer_done(prepared.verdict, top)

    def _record_generation(self, prepared: PreparedAnswer, span: Any) -> None:
        stats, metrics = prepared.stats, self.telemetry.metrics
        span.set_attribute("docchat.prompt_tokens", stats.prompt_tokens)
        span.set_attribute("docchat.completion_tokens", stats.completion_tokens)
        span.set_attribute("docchat.finish_reason", stats.finish_reason or "")
        span.end()
        metrics.prompt_tokens.inc(stats.prompt_tokens)
        metrics.completion_tokens.inc(stats.completion_tokens)
        if stats.time_to_first_token_s is not None:
            metrics.stage_duration.labels("prompt").observe(stats.time_to_first_token_s)
            decode_s = stats.total_s - stats.time_to_first_token_s
            if stats.completion_tokens > 1 and decode_s > 0:
                metrics.tokens_per_second.observe((stats.completion_tokens - 1) / decode_s)
        metrics.stage_duration.labels("generate").observe(stats.total_s)

    async def check(self, prepared: PreparedAnswer, text: str) -> None:
        """Grounding: how much of the answer the retrieved chunks support."""
        with self.telemetry.stage("check") as span:
            score, _detail = await asyncio.to_thread(
                grounding_score, text, prepared.hits, self.retriever.embedder
            )
            prepared.checks["grounding_score"] = round(score, 4)
            prepared.checks["grounded"] = score >= self.grounding_threshold
            span.set_attribute("docchat.grounding_score", score)
        self.telemetry.metrics.grounding_score.observe(score)

    def final_text(self, prepared: PreparedAnswer, streamed: str) -> str:
        """What the user is finally given: the answer, or a notice in its place."""
        if prepared.blocked:
            return WITHHELD_ANSWER
        if prepared.grounded is False and self.ungrounded_action == "replace":
            return UNGROUNDED_ANSWER
        return streamed.strip()
