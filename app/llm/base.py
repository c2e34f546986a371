"""What the answer pipeline and the routes need from a chat model, wherever it runs
(in this process, app/llm/engine.py, or on a model server, app/llm/remote.py), and the
errors both report."""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from app.settings import LLMSettings
from common.errors import DocchatError, Kind


class PromptTooLong(DocchatError, ValueError):
    """The prompt leaves no room in the context window for an answer."""

    kind = Kind.OVER_CONTEXT
    code = "context_length_exceeded"


class EngineBusy(DocchatError, RuntimeError):
    """The wait queue is full: the caller should retry after `retry_after` seconds."""

    kind = Kind.BUSY
    code = "model_busy"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the model is busy; retry in {retry_after} s", retry_after=retry_after)


class GenerationTimeout(DocchatError, TimeoutError):
    """A request passed its deadline, waiting or generating."""

    kind = Kind.TIMEOUT
    code = "timeout"


class CannotChat(DocchatError, ValueError):
    """A model file that cannot serve chat: not loadable, or no chat template."""

    kind = Kind.CONFLICT
    code = "model_unusable"


# A model server that cannot be reached is worth another try in a few seconds.
UNAVAILABLE_RETRY_AFTER_S = 5


class EngineUnavailable(DocchatError, RuntimeError):
    """The model server failed (UPSTREAM_FAILED), could not be reached (UNAVAILABLE) or
    stopped answering in time (TIMEOUT). The message is safe to show (never a key, a
    URL's credentials or the server's own error text); `code` names the failure."""

    def __init__(self, kind: Kind, code: str, message: str) -> None:
        retry_after = UNAVAILABLE_RETRY_AFTER_S if kind is Kind.UNAVAILABLE else None
        super().__init__(message, kind=kind, code=code, retry_after=retry_after)


@dataclass
class Prompt:
    """A chat, formatted with the model's own template and tokenized (local engine), or
    kept as messages for a server that applies the template itself (remote engine)."""

    text: str
    tokens: list[int]
    stop: list[str]
    messages: list[dict[str, str]] = field(default_factory=list)
    # Tokens as counted by a remote server's tokenizer (no token ids are kept here).
    count: int | None = None

    @property
    def n_tokens(self) -> int:
        """Tokens of the whole prompt, counted or estimated."""
        return len(self.tokens) if self.count is None else self.count


@dataclass
class GenerationStats:
    """What one generation cost; filled in as it runs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    queued_s: float = 0.0
    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    finish_reason: str | None = None
    prefix_reused: int = 0
    # The log-probability the model gave each token it wrote (its own confidence; the
    # local engine only: a remote server's answers leave it empty).
    token_logprobs: list[float] = field(default_factory=list)


def busy(settings: LLMSettings, waiting: int) -> EngineBusy:
    """The refusal for a full queue, with a guess at when a slot frees."""
    # A slot frees every few seconds on average; say when to try again.
    per_answer = settings.answer_budget() / 20
    rounds = (waiting + 1) / max(1, settings.parallel)
    return EngineBusy(max(1, math.ceil(rounds * per_answer / 4)))


class Ticket:
    """A place in the engine, held from admission until the answer ends.

    Admission is decided once, before a response starts: a request that gets a ticket
    will be generated (or time out), so it never turns into a 200 followed by "busy".
    """

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._held = True

    def release(self) -> None:
        """Give the place back (idempotent)."""
        if self._held:
            self._held = False
            self._admission.release()


class Admission:
    """Counts the answers an engine has taken on (reserved, waiting or generating)
    against its slots plus its wait queue."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.capacity = settings.parallel + settings.queue_size
        self.held = 0
        self._lock = threading.Lock()

    def reserve(self) -> Ticket:
        """A ticket, or EngineBusy (with when to retry) when every place is taken."""
        with self._lock:
            if self.held >= self.capacity:
                raise busy(self.settings, self.held - self.settings.parallel)
            self.held += 1
        return Ticket(self)

    def release(self) -> None:
        """One place fewer taken."""
        with self._lock:
            self.held -= 1


class Generation:
    """One answer as the engine writes it: iterate for the text; `stats` is complete
    once iteration ends. Closing it early cancels the answer; either way its ticket is
    given back."""

    def __init__(
        self, pieces: AsyncGenerator[str, None], stats: GenerationStats, ticket: Ticket
    ) -> None:
        self._pieces = pieces
        self._ticket = ticket
        self.stats = stats

    def __aiter__(self) -> Generation:
        return self

    async def __anext__(self) -> str:
        try:
            return await anext(self._pieces)
        except BaseException:
            self._ticket.release()
            raise

    async def aclose(self) -> None:
        """Stop generating (the engine frees the slot at its next step)."""
        try:
            await self._pieces.aclose()
        finally:
            self._ticket.release()


class ChatEngine(Protocol):
    """A chat model behind a bounded queue, streaming answers with deadlines."""

    @property
    def model_id(self) -> str:
        """The name the model is announced and recorded under."""
        ...

    @property
    def model_sha256(self) -> str | None:
        """The model file's hash (lineage); None for a model on a server."""
        ...

    @property
    def adapter_sha256(self) -> str | None:
        """The LoRA adapter file's hash (lineage); None when none is served."""
        ...

    @property
    def n_ctx(self) -> int:
        """Context window of one conversation, in tokens."""
        ...

    @property
    def created(self) -> int:
        """Unix time the model is announced with (OpenAI's `created`)."""
        ...

    @property
    def waiting(self) -> int:
        """Requests waiting for a generation slot."""
        ...

    @property
    def running(self) -> int:
        """Requests generating now."""
        ...

    def format(self, messages: list[dict[str, str]]) -> Prompt:
        """The prompt for these chat messages (cheap: no generation, no network)."""
        ...

    def check_fits(self, prompt: Prompt, max_tokens: int) -> None:
        """Raise PromptTooLong unless the prompt plus `max_tokens` fit the context
        (blocking: run it off the event loop)."""
        ...

    @property
    def in_flight(self) -> int:
        """Answers taken on and not yet ended (reserved, waiting or generating)."""
        ...

    def pin(self) -> ChatEngine:
        """The engine that serves one answer from its prompt to its last token (itself,
        or the model in service now behind a swappable engine)."""
        ...

    def reserve(self) -> Ticket:
        """A place for one answer, or EngineBusy when slots and queue are full."""
        ...

    def message_tokens(self, message: dict[str, str]) -> int:
        """Tokens one chat message adds to a prompt, template included (cheap; may
        count high, never much low: prompts are checked exactly once fitted)."""
        ...

    def set_prefix(self, prompt: Prompt) -> None:
        """Cache a prompt prefix every request shares, where the engine can."""
        ...

    def cached_tokens(self, prompt: Prompt) -> int:
        """How many of the prompt's first tokens the engine holds evaluated (the shared
        prefix, a finished answer's cache); 0 where it cannot tell."""
        ...

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | None = None,
        ticket: Ticket | None = None,
    ) -> Generation:
        """The answer, piece by piece. It runs on `ticket` (reserved now when None,
        which may raise EngineBusy) and releases it when it ends; `deadline` is a
        time.monotonic() value (default: llm.request_timeout_s from now)."""
        ...

    async def yes_share(self, prompt: Prompt, *, deadline: float) -> float | None:
        """P(yes) / (P(yes) + P(no)) of the prompt's next token, for a yes/no question
        at its end (the model judging its own answer); None where the engine does not
        expose its probabilities or has no place free now."""
        ...

    def ping(self) -> None:
        """Raise unless the model can answer now (readiness; blocking)."""
        ...

    def close(self) -> None:
        """Release the model or the connections to it."""
        ...


async def greedy_text(engine: ChatEngine, messages: list[dict[str, str]], max_tokens: int) -> str:
    """The model's whole greedy reply to a chat (tools that need text, not a stream:
    dataset synthesis, held-out measurements)."""
    generation = engine.stream(engine.format(messages), max_tokens=max_tokens, temperature=0.0)
    try:
        return "".join([piece async for piece in generation]).strip()
    finally:
        await generation.aclose()
