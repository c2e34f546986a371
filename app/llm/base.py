"""What the answer pipeline and the routes need from a chat model, wherever it runs
(in this process, app/llm/engine.py, or on a model server, app/llm/remote.py), and the
errors both report."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from app.settings import LLMSettings


class PromptTooLong(ValueError):
    """The prompt leaves no room in the context window for an answer."""


class EngineBusy(RuntimeError):
    """The wait queue is full: the caller should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the model is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class GenerationTimeout(TimeoutError):
    """A request passed its deadline, waiting or generating."""


class EngineUnavailable(RuntimeError):
    """The model server failed or could not be reached. The message is safe to show
    (never a key, a URL's credentials or the server's own error text); `status` is the
    HTTP status docchat answers with and `type` the error type in its body."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_


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


def busy(settings: LLMSettings, waiting: int) -> EngineBusy:
    """The 429 for a full queue, with a guess at when a slot frees."""
    # A slot frees every few seconds on average; say when to try again.
    per_answer = settings.max_tokens / 20
    rounds = (waiting + 1) / max(1, settings.parallel)
    return EngineBusy(max(1, math.ceil(rounds * per_answer / 4)))


class ChatEngine(Protocol):
    """A chat model behind a bounded queue, streaming answers with deadlines."""

    model_id: str

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

    def ensure_capacity(self) -> None:
        """Raise EngineBusy when the wait queue is full."""
        ...

    def set_prefix(self, prompt: Prompt) -> None:
        """Cache a prompt prefix every request shares, where the engine can."""
        ...

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stats: GenerationStats | None = None,
    ) -> AsyncIterator[str]:
        """Yield the answer's text piece by piece; closing the iterator cancels it."""
        ...

    def ping(self) -> None:
        """Raise unless the model can answer now (readiness; blocking)."""
        ...

    def close(self) -> None:
        """Release the model or the connections to it."""
        ...
