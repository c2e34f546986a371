"""llama.cpp behind an async interface: one generation at a time owns the model."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.settings import LLMSettings


class PromptTooLong(ValueError):
    """The prompt leaves no room in the context window for an answer."""


@dataclass
class Prompt:
    """A chat formatted with the model's own template, tokenized."""

    text: str
    tokens: list[int]
    stop: list[str]


@dataclass
class GenerationStats:
    """What one generation cost; filled in as it runs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    queued_s: float = 0.0
    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LlamaEngine:
    """A GGUF chat model loaded by llama-cpp-python."""

    def __init__(self, settings: LLMSettings, model_path: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.settings = settings
        self.model_path = model_path
        self.model_id = settings.model_id or model_path.stem
        self.n_threads = settings.n_threads or os.cpu_count() or 1
        self._llm: Any = Llama(
            model_path=str(model_path),
            n_ctx=settings.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_batch=settings.n_batch,
            n_gpu_layers=settings.n_gpu_layers,
            seed=settings.seed,
            verbose=False,
        )
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(
                f"{model_path.name} has no chat template in its metadata; docchat needs an "
                "instruction-tuned model with one"
            )
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "ignore")
        bos = self._llm.detokenize([self._llm.token_bos()]).decode("utf-8", "ignore")
        self._formatter: Any = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        # One thread runs every llama.cpp call: contexts are not thread-safe.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        # Read by the metrics: requests waiting for the model, generations running.
        self.waiting = 0
        self.running = 0

    def _lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; tests run several apps (and loops)
        # on one engine. The single executor thread serializes llama.cpp in any case.
        loop = asyncio.get_running_loop()
        if loop not in self._locks:
            self._locks = {lp: lk for lp, lk in self._locks.items() if not lp.is_closed()}
            self._locks[loop] = asyncio.Lock()
        return self._locks[loop]

    @property
    def n_ctx(self) -> int:
        """Context window in tokens."""
        return int(self._llm.n_ctx())

    def format(self, messages: list[dict[str, str]]) -> Prompt:
        """Apply the model's chat template and tokenize the result."""
        formatted = self._formatter(messages=messages)
        # The template already carries any BOS token, so none is added here.
        tokens = self._llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop or ""]
        return Prompt(formatted.prompt, list(tokens), [s for s in stop if s])

    def count_tokens(self, text: str) -> int:
        """Tokens of plain text in this model's vocabulary."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def check_fits(self, prompt: Prompt, max_tokens: int) -> None:
        """Raise PromptTooLong unless the prompt plus `max_tokens` fit the context."""
        if len(prompt.tokens) + max_tokens > self.n_ctx:
            raise PromptTooLong(
                f"the prompt has {len(prompt.tokens)} tokens and the answer may take "
                f"{max_tokens}, more than the model's context of {self.n_ctx} tokens"
            )

    async def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stats: GenerationStats | None = None,
    ) -> AsyncIterator[str]:
        """Yield the answer's text piece by piece; closing the iterator stops generation."""
        max_tokens = max_tokens or self.settings.max_tokens
        temperature = self.settings.temperature if temperature is None else temperature
        self.check_fits(prompt, max_tokens)
        stats = stats if stats is not None else GenerationStats()
        stats.prompt_tokens = len(prompt.tokens)
        queued = time.perf_counter()
        self.waiting += 1
        try:
            await self._lock().acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            started = time.perf_counter()
            stats.queued_s = started - queued
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            cancel = threading.Event()

            def put(kind: str, value: Any) -> None:
                # The loop may be gone when the server shuts down mid-answer.
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
                except RuntimeError:
                    cancel.set()

            def work() -> None:
                try:
                    chunks = self._llm.create_completion(
                        prompt.tokens,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        seed=self.settings.seed,
                        repeat_penalty=self.settings.repeat_penalty,
                        stop=prompt.stop,
                        stream=True,
                    )
                    finish = None
                    for chunk in chunks:
                        if cancel.is_set():
                            finish = "cancelled"
                            break
                        choice = chunk["choices"][0]
                        if choice["text"]:
                            put("text", choice["text"])
                        finish = choice.get("finish_reason") or finish
                    put("end", finish)
                except Exception as exc:  # handed to the awaiting coroutine
                    put("error", exc)

            future = loop.run_in_executor(self._executor, work)
            pieces: list[str] = []
            try:
                while True:
                    kind, value = await queue.get()
                    if kind == "text":
                        if stats.time_to_first_token_s is None:
                            stats.time_to_first_token_s = time.perf_counter() - started
                        pieces.append(value)
                        yield value
                    elif kind == "end":
                        stats.finish_reason = value
                        break
                    else:
                        raise value
            finally:
                # Stop the worker within a token and wait for it, so the model is
                # free before the lock is: the next request must find it idle.
                cancel.set()
                await asyncio.shield(future)
                stats.total_s = time.perf_counter() - started
                if pieces:
                    stats.completion_tokens = self.count_tokens("".join(pieces))
                if stats.finish_reason is None:
                    stats.finish_reason = "cancelled"
        finally:
            self.running -= 1
            self._lock().release()

    def prompt_eval_seconds(self, prompt: Prompt) -> float:
        """llama.cpp's own time to evaluate `prompt` from an empty cache (benchmarks)."""
        self.reset_cache()
        started = time.perf_counter()
        self._llm.eval(prompt.tokens)
        return time.perf_counter() - started

    def reset_cache(self) -> None:
        """Forget the cached prompt prefix, so the next prompt is evaluated in full."""
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()

    def close(self) -> None:
        """Free the model and its thread."""
        self._executor.shutdown(wait=True)
        self._llm.close()
