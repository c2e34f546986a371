"""The answer pipeline: retrieve, fit the prompt to the context, generate."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.llm.engine import GenerationStats, LlamaEngine, Prompt, PromptTooLong
from app.rag.prompt import NO_CONTEXT_ANSWER, build_messages, system_prompt
from app.rag.retrieval import Citation, Retriever, citations
from app.security.output_guard import WITHHELD_ANSWER, OutputGuard
from app.store.vectors import Hit


@dataclass
class PreparedAnswer:
    """Everything decided before the first token: sources and the exact prompt."""

    hits: list[Hit]
    prompt: Prompt | None  # None: nothing relevant was found, no model call
    max_tokens: int
    stats: GenerationStats = field(default_factory=GenerationStats)
    # Results of the answer checks, e.g. {"blocked": "secret value"}; stored with it.
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        """Whether the output guard withheld the answer."""
        return "blocked" in self.checks

    @property
    def answered_from_docs(self) -> bool:
        """Whether the answer is built on retrieved documentation."""
        return self.prompt is not None

    @property
    def citations(self) -> list[Citation]:
        """The sources given to the model, numbered as in the prompt."""
        return citations(self.hits)


class Answerer:
    """Turns a question (and earlier turns) into a streamed, cited answer."""

    def __init__(
        self,
        retriever: Retriever,
        engine: LlamaEngine,
        *,
        max_tokens: int,
        guard: OutputGuard,
    ) -> None:
        self.retriever = retriever
        self.engine = engine
        self.max_tokens = max_tokens
        self.guard = guard
        self.system = system_prompt(guard.canary)

    async def prepare(
        self,
        question: str,
        history: list[tuple[str, str]],
        *,
        previous_question: str | None = None,
        extra_system: str = "",
        max_tokens: int | None = None,
    ) -> PreparedAnswer:
        """Retrieve and build a prompt that fits; raises PromptTooLong if none can."""
        started = time.perf_counter()
        hits = await self.retriever.relevant(question, previous_question)
        retrieval_s = time.perf_counter() - started
        budget = min(max_tokens or self.max_tokens, self.max_tokens)
        if not hits:
            prepared = PreparedAnswer([], None, budget)
        else:
            prompt, hits = await asyncio.to_thread(
                self._fit, question, hits, history, extra_system, budget
            )
            prepared = PreparedAnswer(hits, prompt, budget)
        prepared.stats.extra["retrieval_s"] = retrieval_s
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
            if len(prompt.tokens) + max_tokens <= self.engine.n_ctx:
                return prompt, hits
            if history:
                history = history[2:]
            elif len(hits) > 1:
                hits = hits[:-1]
            else:
                self.engine.check_fits(prompt, max_tokens)
                raise PromptTooLong("the question is too long for the model's context")

    async def stream(
        self, prepared: PreparedAnswer, *, temperature: float | None = None
    ) -> AsyncIterator[str]:
        """The answer's text in pieces, as the model writes it, after the output guard.

        A withheld answer ends early; `prepared.blocked` is then set and the caller
        replaces what it showed with WITHHELD_ANSWER.
        """
        if prepared.prompt is None:
            for piece in re.findall(r"\S+\s*", NO_CONTEXT_ANSWER):
                yield piece
            prepared.stats.finish_reason = "stop"
            return
        generated = self.engine.stream(
            prepared.prompt,
            max_tokens=prepared.max_tokens,
            temperature=temperature,
            stats=prepared.stats,
        )
        async for piece in self.guard.filter(generated, prepared.checks):
            yield piece
        if prepared.blocked:
            prepared.stats.finish_reason = "content_filter"

    @staticmethod
    def final_text(prepared: PreparedAnswer, streamed: str) -> str:
        """What the user is finally given: the answer, or the withheld notice."""
        return WITHHELD_ANSWER if prepared.blocked else streamed.strip()
