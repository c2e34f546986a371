"""The chat service: one answer from question to stored message.

`open` decides everything before a response starts (bounds, the stored conversation,
retrieval, a place in the model's queue, the prompt) under the request's deadline, so
that every refusal is a domain error raised before any byte is sent. The `Answer` it
returns then yields typed events (tokens, then finished or failed) and stores the
outcome however the answer ends: complete, withheld, failed, or cancelled because the
client left.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from app.access.policy import CollectionAccess
from app.chat.checking import check_answer
from app.chat.collection import collection_of
from app.chat.costs import record_generation
from app.chat.errors import InvalidQuestion
from app.chat.events import (
    AnswerChecks,
    AnswerEvent,
    Failed,
    Finished,
    Release,
    Started,
    Token,
    Usage,
)
from app.chat.passage import closest_passage
from app.chat.question import Question, check_size
from app.chat.records import ChatRecords
from app.chat.self_check import with_self_check
from app.chat.warm_turns import Turns, WarmTurns, choose_prompt
from app.llm.base import ChatEngine, GenerationStats, GenerationTimeout, Prompt, Ticket
from app.llm.embedder import Embed
from app.llm.kept import shared_start
from app.rag.answer_types import asked_types
from app.rag.confidence import confidence_floor
from app.rag.embedding_memo import EmbeddingMemo
from app.rag.fitting import fit_prompt
from app.rag.followup import newest_question, standalone
from app.rag.prompt import NO_CONTEXT_ANSWER, system_prompt
from app.rag.retrieval import Retriever, citations
from app.rag.scope import not_covered_answer
from app.security.output_guard import WITHHELD_ANSWER, OutputGuard
from app.security.pii import PiiRedactor
from app.settings import LLMSettings, RagSettings
from app.store.db import Database
from app.store.vectors import Hit
from app.telemetry.reporter import Telemetry
from common.errors import DocchatError, InternalError

log = logging.getLogger(__name__)

UNGROUNDED_ANSWER = (
    "The documentation does not clearly cover this question: the answer I drafted was "
    "not supported by the passages I found. The closest sources are listed below."
)


def release_of(engine: ChatEngine) -> Release:
    """The model (and adapter) an engine answers with, as the answer names it."""
    return Release(engine.model_id, engine.model_sha256, engine.adapter_sha256)


class ChatService:
    """Answers questions from the documentation, with citations and checks."""

    def __init__(
        self,
        retriever: Retriever,
        engine: ChatEngine,
        guard: OutputGuard,
        db: Database,
        *,
        rag: RagSettings,
        llm: LLMSettings,
        telemetry: Telemetry | None = None,
        pii: PiiRedactor | None = None,
        access: CollectionAccess | None = None,
        retrievers: Callable[[str], Retriever] | None = None,
    ) -> None:
        self.retriever = retriever  # the default collection's
        # Who may read which collection (None: no rule, the default collection only,
        # as a tool or a test that builds the service over one retriever).
        self.access = access
        self._retrievers = retrievers
        # Personal data is replaced in what is stored (privacy.redact_personal_data);
        # what the user reads is the answer as written.
        self.pii = pii
        self.engine = engine
        self.guard = guard
        self.db = db
        self.records = ChatRecords(db, pii)
        self.rag = rag
        self.llm = llm
        self.telemetry = telemetry or retriever.telemetry
        self.system = system_prompt(guard.canary)
        # Each conversation's last prompt as sent, for a follow-up the engine's cache
        # of it makes cheap (app/chat/warm_turns.py).
        self.warm = WarmTurns(max_age_s=llm.cache_max_age_s)

    def shared_prefix(self, engine: ChatEngine | None = None) -> Prompt:
        """The tokens every prompt starts with (the system turn in the model's template),
        for the engine to evaluate once and reuse."""
        engine = engine or self.engine
        # Two chats that differ from the first character of the user turn: what they
        # share is the system turn and the user header, a prefix of every real prompt.
        system = {"role": "system", "content": self.system}
        a = engine.format([system, {"role": "user", "content": "A"}])
        b = engine.format([system, {"role": "user", "content": "Z"}])
        return Prompt(a.text, a.tokens[: shared_start(a.tokens, b.tokens)], [])

    def retriever_for(self, collection: str) -> Retriever:
        """The retriever over `collection` (the default one's unless another is named)."""
        if collection == self.retriever.collection or self._retrievers is None:
            return self.retriever
        return self._retrievers(collection)

    async def prompt_for(self, text: str) -> Prompt | None:
        """The prompt a new question gets (benchmarks and tools: nothing is reserved or
        stored); None when the docs do not cover it."""
        hits = await self.retriever.context(text)
        if not hits:
            return None
        budget = self.llm.answer_budget()
        fitted = await asyncio.to_thread(
            fit_prompt, self.engine, self.system, text, hits, [], "", budget
        )
        return fitted.prompt

    async def open(self, question: Question) -> Answer:
        """Decide everything before the first byte: refusals raise here (the errors of
        app/chat/errors.py, EngineBusy, PromptTooLong, GenerationTimeout), never later."""
        deadline = time.monotonic() + self.llm.request_timeout_s
        text = question.text.strip()
        if not text:
            raise InvalidQuestion("question: must not be blank")
        check_size(self.rag, question, text)
        history = list(question.history)
        previous = next((t for role, t in reversed(history) if role == "user"), None)
        collection, earlier = await collection_of(
            question, self.records, self.access, self.retriever.collection, self.rag.history_turns
        )
        if earlier is not None:
            history, previous = earlier.history, earlier.previous
        retriever = self.retriever_for(collection)
        budget = self.llm.answer_budget(question.max_tokens)
        # One engine for the whole answer, even if the model in service is swapped.
        engine = self.engine.pin()
        ticket: Ticket | None = None
        prompt: Prompt | None = None
        sent: Turns | None = None
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                query = await standalone(self.rag.followups, engine, text, previous, deadline)
                hits = await retriever.context(query, previous)
                refusal = NO_CONTEXT_ANSWER
                if not hits and retriever.scope == "calibrated":
                    # Say what the docs never mention, or the kind of fact they do
                    # not give (a price, a date), when that is why.
                    unknown = await asyncio.to_thread(retriever.unknown_names, query)
                    asked = newest_question(query, previous)
                    kinds = [t.name for t in asked_types(asked)] if retriever.answer_types else []
                    refusal = not_covered_answer(unknown, kinds)
                if hits:  # a question the docs do not cover needs no model
                    ticket = engine.reserve()
                    chosen = await asyncio.to_thread(
                        choose_prompt,
                        engine,
                        self.system,
                        text,
                        hits,
                        history,
                        self.warm.recall(question.conversation_id),
                        question.extra_system,
                        budget,
                    )
                    prompt, hits = chosen.fitted.prompt, chosen.fitted.hits
                    sent = chosen.sent
            ids: tuple[str | None, str | None] = (None, None)
            if question.store:
                ids = await asyncio.to_thread(
                    self.records.store_question,
                    question.conversation_id,
                    question.caller.owner if question.caller else None,
                    text,
                    hits,
                    release_of(engine),
                    # A conversation of the default collection records it too: a later
                    # change of vectors.collection must not move it.
                    collection,
                )
        except TimeoutError:
            if ticket is not None:
                ticket.release()
            raise GenerationTimeout(
                f"the request passed its deadline ({self.llm.request_timeout_s:g} s) "
                "before the model was reached"
            ) from None
        except BaseException:
            if ticket is not None:
                ticket.release()
            raise
        return Answer(
            self,
            engine,
            Started(ids[0], ids[1], citations(hits)),
            hits=hits,
            query=query,
            prompt=prompt,
            budget=budget,
            temperature=question.temperature,
            deadline=deadline,
            ticket=ticket,
            refusal=refusal,
            sent=sent,
        )

    async def check_grounding(
        self,
        text: str,
        hits: list[Hit],
        question: str,
        with_support: bool = True,
        stats: GenerationStats | None = None,
        engine: ChatEngine | None = None,
        prompt: Prompt | None = None,
        deadline: float | None = None,
        embed: Embed | None = None,
    ) -> AnswerChecks:
        """The answer's checks (app/chat/checking.py); the model's confidence when the
        generation's `stats` carry its tokens' probabilities; given the `prompt` it
        answered, `engine` asked whether it is supported when the rest passed
        (app/chat/self_check.py). `embed`: the answer's memo, where other checks have
        embedded its sentences already."""
        engine = engine or self.engine
        floor = confidence_floor(self.rag.min_confidence, engine.model_sha256)
        checks = await check_answer(
            self.rag,
            self.telemetry,
            embed or EmbeddingMemo(self.retriever.embedder.embed),
            text,
            hits,
            question,
            with_support=with_support,
            logprobs=stats.token_logprobs if stats else None,
            floor=floor,
        )
        deadline = deadline or time.monotonic() + self.llm.request_timeout_s
        return await with_self_check(checks, self.rag.self_check, engine, prompt, text, deadline)


class Answer:
    """An admitted answer: its ids and sources now, its text as events."""

    def __init__(
        self,
        service: ChatService,
        engine: ChatEngine,
        started: Started,
        *,
        hits: list[Hit],
        query: str,
        prompt: Prompt | None,
        budget: int,
        temperature: float | None,
        deadline: float,
        ticket: Ticket | None,
        refusal: str = NO_CONTEXT_ANSWER,
        sent: Turns | None = None,
    ) -> None:
        self.service = service
        self.engine = engine  # the model that writes this answer, to its end
        self.release = release_of(engine)
        self.started = started
        self.hits = hits
        self.query = query  # what retrieval searched for (a follow-up made standalone)
        self.prompt = prompt  # None: nothing relevant was found, no model call
        self.budget = budget
        self.temperature = temperature
        self.deadline = deadline
        self.opened = deadline - service.llm.request_timeout_s  # when the question came
        self.ticket = ticket
        self.refusal = refusal  # what is said when the docs do not cover the question
        self.sent = sent  # the prompt's turns as sent, its answer to be added
        self._begun = False

    @property
    def answered_from_docs(self) -> bool:
        """Whether the answer is built on retrieved documentation."""
        return self.prompt is not None

    async def events(self) -> AsyncIterator[AnswerEvent]:
        """Tokens, then Finished or Failed. Closing the iteration early cancels the
        answer; the outcome is stored however it ends."""
        self._begun = True
        service = self.service
        pieces: list[str] = []
        status = "cancelled"  # unless the answer ends: the client went away
        final: Finished | None = None
        usage, checks = Usage(), AnswerChecks()
        stats: GenerationStats | None = None
        try:
            if self.prompt is None:
                for piece in re.findall(r"\S+\s*", self.refusal):
                    pieces.append(piece)
                    yield Token(piece)
                final = self._finished("".join(pieces), None, checks, "stop")
            else:
                generation = self.engine.stream(
                    self.prompt,
                    max_tokens=self.budget,
                    temperature=self.temperature,
                    deadline=self.deadline,
                    ticket=self.ticket,
                )
                guarded = service.guard.watch(generation)
                # Not made current: a span current across `yield`s would leak its context.
                span = service.telemetry.tracer.start_span("generate")
                try:
                    async for piece in guarded:
                        pieces.append(piece)
                        yield Token(piece)
                finally:
                    stats = generation.stats
                    usage = Usage(stats.prompt_tokens, stats.completion_tokens)
                    record_generation(service.telemetry, stats, span)
                checks = AnswerChecks(retrieval_score=round(self.hits[0].score, 4))
                final = await self._checked("".join(pieces), stats, checks, guarded.violation)
            status = "blocked" if final.checks.blocked else "complete"
            conversation = self.started.conversation_id
            if status == "complete" and self.sent is not None and conversation is not None:
                service.warm.remember(conversation, [*self.sent, ("assistant", final.text)])
            top = self.hits[0].score if self.hits else None
            service.telemetry.answer_done(final.verdict, top)
            yield final
        except Exception as exc:
            status = "error"
            error = exc if isinstance(exc, DocchatError) else None
            if error is None:
                log.exception("answer failed in conversation %s", self.started.conversation_id)
                error = InternalError()
            yield Failed(error)
        finally:
            if self.ticket is not None:
                self.ticket.release()
            if self.started.message_id is not None:
                text = final.text if final is not None else "".join(pieces).strip()
                checks = final.checks if final is not None else checks
                # Shielded: the write must happen even while this task is being cancelled.
                await asyncio.shield(
                    asyncio.to_thread(
                        service.records.store_outcome,
                        self.started.message_id,
                        text,
                        status,
                        usage,
                        checks,
                        time.monotonic() - self.opened,
                        final.finish_reason if final is not None else None,
                    )
                )

    async def _checked(
        self, text: str, stats: GenerationStats, checks: AnswerChecks, violation: str | None
    ) -> Finished:
        """The finished answer after the output guard's verdict, a check for a reworded
        system prompt (too costly per token: it embeds the answer) and grounding."""
        service = self.service
        # Every check below embeds the answer's sentences: each is embedded once.
        embed = EmbeddingMemo(service.retriever.embedder.embed)
        paraphrase = service.guard.leaks.paraphrase
        if violation is None and text.strip() and await asyncio.to_thread(paraphrase, text, embed):
            violation = "system prompt paraphrase"
        if violation is not None:
            blocked = AnswerChecks(retrieval_score=checks.retrieval_score, blocked=violation)
            return self._finished(
                WITHHELD_ANSWER, WITHHELD_ANSWER, blocked, "content_filter", stats
            )
        grounding = await self.service.check_grounding(
            text,
            self.hits,
            self.query,
            stats=stats,
            engine=self.engine,
            prompt=self.prompt,
            deadline=self.deadline,
            embed=embed,
        )
        checks = replace(grounding, retrieval_score=checks.retrieval_score)
        grounded = checks.grounded
        notice = None
        action = self.service.rag.ungrounded_action
        if not grounded and action == "replace":
            notice = UNGROUNDED_ANSWER
            checks = replace(checks, replaced_by="notice", support=None)
        elif not grounded and action == "passages":
            notice = await asyncio.to_thread(
                closest_passage, self.hits, self.query, embed, checks.unsure_only
            )
            checks = replace(checks, replaced_by="passage", support=None)
        reason = stats.finish_reason or "stop"
        return self._finished(notice or text, notice, checks, reason, stats)

    def _finished(
        self,
        text: str,
        notice: str | None,
        checks: AnswerChecks,
        reason: str,
        stats: GenerationStats | None = None,
    ) -> Finished:
        usage = Usage(stats.prompt_tokens, stats.completion_tokens) if stats else Usage()
        return Finished(
            text=text.strip(),
            notice=notice,
            citations=self.started.citations,
            answered_from_docs=self.answered_from_docs,
            checks=checks,
            usage=usage,
            finish_reason=reason,
            release=self.release,
            conversation_id=self.started.conversation_id,
            message_id=self.started.message_id,
            stats=stats,
        )

    async def result(self) -> Finished | Failed:
        """Run the answer to its end (the non-streamed routes)."""
        last: AnswerEvent | None = None
        async for event in self.events():
            last = event
        assert isinstance(last, Finished | Failed)
        return last

    async def cancel(self) -> None:
        """Give up an answer that was opened but never run (its client left first)."""
        if self._begun:
            return
        self._begun = True
        if self.ticket is not None:
            self.ticket.release()
        if self.started.message_id is not None:
            await asyncio.to_thread(
                self.service.records.store_outcome,
                self.started.message_id,
                "",
                "cancelled",
                Usage(),
                AnswerChecks(),
            )
