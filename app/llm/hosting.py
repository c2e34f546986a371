"""The model in service, exchangeable while the server answers.

A SwappableEngine stands where the chat engine stands; each answer pins the engine
that is current when it starts and runs on it to its last token. A swap makes a new
engine current for the answers that start after it, and the old one is closed once
the answers it took on have ended: no restart, no failed request.

The ModelHost keeps a server's engine in step with the release in service: every
replica polls it, so `docchat models activate` on any machine, or the admin API on one
replica, reaches them all. What a release is, and where it is recorded, is the
composition root's to say (app/releases): the host only compares hashes and loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from app.llm.base import ChatEngine, Generation, Prompt, Ticket

log = logging.getLogger(__name__)

RETIRE_POLL_S = 0.2


class Release(Protocol):
    """A model file with an adapter on it or none, as the host tells them apart."""

    @property
    def sha256(self) -> str: ...

    @property
    def adapter_sha256(self) -> str | None: ...

    @property
    def release(self) -> str: ...


R = TypeVar("R", bound=Release)


class SwappableEngine:
    """A ChatEngine whose model can be exchanged; everything delegates to the current
    engine, except the counts, which include engines still finishing answers."""

    def __init__(self, engine: ChatEngine) -> None:
        self._current = engine
        self._retiring: list[ChatEngine] = []
        self._lock = threading.Lock()

    @property
    def current(self) -> ChatEngine:
        """The engine new answers start on."""
        return self._current

    @property
    def model_id(self) -> str:
        """The current model's name."""
        return self._current.model_id

    @property
    def model_sha256(self) -> str | None:
        """The current model file's hash."""
        return self._current.model_sha256

    @property
    def adapter_sha256(self) -> str | None:
        """The current adapter file's hash (None: the base model alone)."""
        return self._current.adapter_sha256

    @property
    def n_ctx(self) -> int:
        """The current model's context per conversation."""
        return self._current.n_ctx

    @property
    def created(self) -> int:
        """When the current model was announced."""
        return self._current.created

    def _all(self) -> list[ChatEngine]:
        with self._lock:
            return [self._current, *self._retiring]

    @property
    def waiting(self) -> int:
        """Requests waiting, on every engine still serving."""
        return sum(engine.waiting for engine in self._all())

    @property
    def running(self) -> int:
        """Requests generating, on every engine still serving."""
        return sum(engine.running for engine in self._all())

    @property
    def in_flight(self) -> int:
        """Answers taken on and not ended, on every engine still serving."""
        return sum(engine.in_flight for engine in self._all())

    @property
    def retiring(self) -> int:
        """Engines replaced but still finishing answers."""
        with self._lock:
            return len(self._retiring)

    def pin(self) -> ChatEngine:
        """The engine an answer starting now runs on, to its end."""
        return self._current.pin()

    def format(self, messages: list[dict[str, str]]) -> Prompt:
        """See ChatEngine (the current engine)."""
        return self._current.format(messages)

    def message_tokens(self, message: dict[str, str]) -> int:
        """See ChatEngine (the current engine)."""
        return self._current.message_tokens(message)

    def check_fits(self, prompt: Prompt, max_tokens: int) -> None:
        """See ChatEngine (the current engine)."""
        self._current.check_fits(prompt, max_tokens)

    def reserve(self) -> Ticket:
        """See ChatEngine (the current engine)."""
        return self._current.reserve()

    def set_prefix(self, prompt: Prompt) -> None:
        """See ChatEngine (the current engine)."""
        self._current.set_prefix(prompt)

    def cached_tokens(self, prompt: Prompt) -> int:
        """See ChatEngine (the current engine)."""
        return self._current.cached_tokens(prompt)

    async def yes_share(self, prompt: Prompt, *, deadline: float) -> float | None:
        """See ChatEngine (the current engine)."""
        return await self._current.yes_share(prompt, deadline=deadline)

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | None = None,
        ticket: Ticket | None = None,
    ) -> Generation:
        """See ChatEngine (the current engine; answers pin theirs instead)."""
        return self._current.stream(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            deadline=deadline,
            ticket=ticket,
        )

    def ping(self) -> None:
        """See ChatEngine (the current engine)."""
        self._current.ping()

    def swap(self, engine: ChatEngine) -> ChatEngine:
        """Make `engine` current; the old one keeps serving the answers it has."""
        with self._lock:
            old, self._current = self._current, engine
            self._retiring.append(old)
        return old

    def close_idle(self) -> list[ChatEngine]:
        """Close replaced engines that have no answer left; the ones closed."""
        with self._lock:
            idle = [e for e in self._retiring if e.in_flight == 0]
            self._retiring = [e for e in self._retiring if e not in idle]
        for engine in idle:
            engine.close()
        return idle

    def close(self) -> None:
        """Close every engine."""
        with self._lock:
            engines, self._retiring = [self._current, *self._retiring], []
        for engine in engines:
            engine.close()


class ModelHost(Generic[R]):
    """Keeps a server's engine serving the release in service (`active`), loaded by
    `load` (which checks the files first)."""

    def __init__(
        self,
        engine: SwappableEngine,
        active: Callable[[], R | None],
        load: Callable[[R], ChatEngine],
        warm: Callable[[ChatEngine], None],
        *,
        poll_s: float,
        on_swap: Callable[[ChatEngine], None] = lambda engine: None,
    ) -> None:
        self.engine = engine
        self.active = active
        self.load = load
        self.warm = warm
        self.poll_s = poll_s
        self.on_swap = on_swap
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Follow the release in service until cancelled (the server's lifespan)."""
        while True:
            with contextlib.suppress(TimeoutError):  # woken early, or the poll is due
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            try:
                await self.sync()
            except Exception:  # a bad file or an unreachable database: keep serving
                log.exception("could not switch to the release in service")

    async def sync(self) -> R | None:
        """Serve the release in service, loading and swapping to it if it is not served
        yet; the release served (None when none was activated yet)."""
        async with self._lock:
            entry = await asyncio.to_thread(self.active)
            if entry is None or (entry.sha256, entry.adapter_sha256) == (
                self.engine.model_sha256,
                self.engine.adapter_sha256,
            ):
                return entry
            log.info("loading model %s to replace %s", entry.release, self.engine.model_id)
            new = await asyncio.to_thread(self.load, entry)
            try:
                await asyncio.to_thread(self.warm, new)
            except BaseException:
                new.close()
                raise
            old = self.engine.swap(new)
            self.on_swap(new)
            log.info(
                "now serving model %s (%s); %s finishes %d answer(s) first",
                entry.release,
                entry.sha256[:12],
                old.model_id,
                old.in_flight,
            )
        asyncio.get_running_loop().create_task(self._retire())
        return entry

    async def _retire(self) -> None:
        while self.engine.retiring:
            for engine in await asyncio.to_thread(self.engine.close_idle):
                log.info("model %s closed: its answers have ended", engine.model_id)
            await asyncio.sleep(RETIRE_POLL_S)

    def wake(self) -> None:
        """Check the release in service now (after an activation through this server)."""
        self._wake.set()
