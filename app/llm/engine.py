"""llama.cpp behind an async interface: a bounded queue in front of a continuous
batching scheduler (app/llm/batching.py) that owns the model's context."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from app.llm.base import Admission, CannotChat, Generation, Ticket
from app.llm.base import EngineBusy as EngineBusy
from app.llm.base import GenerationStats as GenerationStats
from app.llm.base import GenerationTimeout as GenerationTimeout
from app.llm.base import Prompt as Prompt
from app.llm.base import PromptTooLong as PromptTooLong
from app.llm.batching import BatchedContext, BatchScheduler
from app.llm.cpu_backends import load_cpu_backend
from app.llm.hardware import default_threads
from app.llm.jobs import Job
from app.settings import LLMSettings

# The spellings of a yes/no answer's first token (single tokens of the vocabulary only).
YES = ("yes", "Yes", " yes", " Yes", "YES")
NO = ("no", "No", " no", " No", "NO")

log = logging.getLogger(__name__)


class LlamaEngine:
    """A GGUF chat model: tokenizer and chat template, and a batched generator."""

    def __init__(
        self,
        settings: LLMSettings,
        model_path: Path,
        *,
        name: str | None = None,
        sha256: str | None = None,
        adapter: Path | None = None,
        adapter_name: str | None = None,
        adapter_sha256: str | None = None,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:  # before the first model: the CPU kernels this machine runs best
            self.cpu_variant = load_cpu_backend(settings.cpu_variant)
        except ValueError as exc:
            raise CannotChat(str(exc)) from None

        self.settings = settings
        self.model_path = model_path
        self.model_id = settings.model_id or name or model_path.stem
        if adapter is not None:
            self.model_id += f"+{adapter_name or adapter.stem}"
        self.model_sha256 = sha256  # lineage: stored with every answer
        self.adapter_sha256 = adapter_sha256 if adapter is not None else None
        self.n_threads = settings.n_threads or default_threads()
        # The Llama object loads the weights and gives the tokenizer and template; its
        # own context is kept small, since generation runs in the batched context.
        try:
            self._llm: Any = Llama(
                model_path=str(model_path),
                n_ctx=256,
                n_threads=self.n_threads,
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed,
                verbose=False,
            )
        except ValueError as exc:  # llama.cpp's "Failed to load model from file"
            raise CannotChat(f"{model_path.name}: llama.cpp cannot load it ({exc})") from None
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            self._llm.close()
            raise CannotChat(
                f"{model_path.name} has no chat template in its metadata; docchat needs an "
                "instruction-tuned model with one"
            )
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "ignore")
        bos = self._llm.detokenize([self._llm.token_bos()]).decode("utf-8", "ignore")
        self._formatter: Any = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self._adapter: Any = None
        if adapter is not None:
            self._adapter = load_adapter(self._llm._model.model, adapter)
        self.context = BatchedContext(
            self._llm._model.model,
            n_ctx_per_seq=settings.n_ctx,
            n_parallel=settings.parallel,
            n_batch=settings.n_batch,
            n_threads=self.n_threads,
            adapter=self._adapter,
            n_kept=settings.cache_sequences,
        )
        self.scheduler = BatchScheduler(
            self.context,
            prefill_chunk=settings.prefill_chunk,
            step_target_s=settings.stream_gap_ms / 1000,
            cache_max_age_s=settings.cache_max_age_s,
            lookup_tokens=settings.lookup_tokens,
        )
        self.admission = Admission(settings)
        self._message_overhead: int | None = None
        self._yes_no: tuple[list[int], list[int]] | None = None  # token ids, found once
        self._jobs: set[Job] = set()
        self._jobs_lock = threading.Lock()

    @property
    def n_ctx(self) -> int:
        """Context window of one conversation, in tokens."""
        return self.settings.n_ctx

    @property
    def created(self) -> int:
        """The model file's modification time (OpenAI's `created`)."""
        return int(self.model_path.stat().st_mtime)

    @property
    def waiting(self) -> int:
        """Requests submitted but not yet given a sequence slot."""
        with self._jobs_lock:
            return sum(1 for job in self._jobs if job.admitted_at is None)

    @property
    def running(self) -> int:
        """Requests generating now."""
        with self._jobs_lock:
            return sum(1 for job in self._jobs if job.admitted_at is not None)

    def format(self, messages: list[dict[str, str]]) -> Prompt:
        """Apply the model's chat template and tokenize the result."""
        formatted = self._formatter(messages=messages)
        # The template already carries any BOS token, so none is added here.
        tokens = self._llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop or ""]
        return Prompt(formatted.prompt, list(tokens), [s for s in stop if s], list(messages))

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

    @property
    def in_flight(self) -> int:
        """Answers taken on and not yet ended (reserved, waiting or generating)."""
        return self.admission.held

    def pin(self) -> LlamaEngine:
        """The engine that serves one answer from start to end: itself."""
        return self

    def reserve(self) -> Ticket:
        """A place for one answer among the slots and the wait queue, or EngineBusy.
        Counted as a whole: `queue_size=0` still serves the free slots."""
        return self.admission.reserve()

    def message_tokens(self, message: dict[str, str]) -> int:
        """Tokens of the message's text plus what the chat template wraps it in."""
        if self._message_overhead is None:
            # Measured once: a chat with one more message, minus that message's text.
            system = {"role": "system", "content": "s"}
            one = self.format([system])
            two = self.format([system, {"role": "user", "content": "x"}])
            self._message_overhead = max(0, len(two.tokens) - len(one.tokens) - 1) + 1
        return self.count_tokens(message["content"]) + self._message_overhead

    def set_prefix(self, prompt: Prompt) -> None:
        """Cache the evaluation of a prompt prefix shared by every request (the system
        prompt): requests starting with it skip evaluating it."""
        self.scheduler.call(lambda: self.context.set_prefix(prompt.tokens))

    def cached_tokens(self, prompt: Prompt) -> int:
        """The longest start of the prompt that a free sequence or the cached system
        prompt holds (a snapshot: the worker may reuse that sequence meanwhile)."""
        prefix = self.context.prefix
        shared = len(prefix) if prompt.tokens[: len(prefix)] == prefix else 0
        return max(shared, self.scheduler.free.held(prompt.tokens))

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | None = None,
        ticket: Ticket | None = None,
        ignore_eos: bool = False,
    ) -> Generation:
        """The answer, piece by piece; closing it cancels the generation. Without a
        ticket one is reserved now (EngineBusy when full). `ignore_eos` decodes all
        `max_tokens` (benchmarks of decode speed)."""
        max_tokens = max_tokens or self.settings.max_tokens
        self.check_fits(prompt, max_tokens)
        ticket = ticket or self.reserve()
        job = Job(
            tokens=prompt.tokens,
            max_tokens=max_tokens,
            temperature=self.settings.temperature if temperature is None else temperature,
            seed=self.settings.seed,
            repeat_penalty=self.settings.repeat_penalty,
            stop_repeats=self.settings.stop_repeats,
            deadline=deadline or time.monotonic() + self.settings.request_timeout_s,
            emit=lambda kind, value: None,  # bound to the loop once iteration starts
            ignore_eos=ignore_eos,
        )
        stats = GenerationStats(prompt_tokens=len(prompt.tokens))
        return Generation(self._run(job, stats), stats, ticket)

    async def yes_share(self, prompt: Prompt, *, deadline: float) -> float | None:
        """See ChatEngine: one greedy token of `prompt`, its yes/no share read from the
        logits. A finished answer's cache makes a prompt that continues it cheap."""
        if self._yes_no is None:

            def ids(words: tuple[str, ...]) -> list[int]:
                found = [
                    self._llm.tokenize(w.encode(), add_bos=False, special=False) for w in words
                ]
                return sorted({t[0] for t in found if len(t) == 1})

            self._yes_no = (ids(YES), ids(NO))
        self.check_fits(prompt, 1)
        try:
            ticket = self.reserve()
        except EngineBusy:
            return None
        job = Job(
            tokens=prompt.tokens,
            max_tokens=1,
            temperature=0.0,
            seed=self.settings.seed,
            repeat_penalty=1.0,
            deadline=deadline,
            emit=lambda kind, value: None,
            choices=self._yes_no,
        )
        try:
            async for _piece in self._run(job, GenerationStats(prompt_tokens=len(prompt.tokens))):
                pass
        finally:
            ticket.release()
        return job.choice_share

    async def _run(self, job: Job, stats: GenerationStats) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def emit(kind: str, value: Any) -> None:
            # From the worker thread; the loop may be gone at shutdown.
            try:
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))
            except RuntimeError:
                job.cancel.set()

        job.emit = emit
        started = time.monotonic()
        with self._jobs_lock:
            self._jobs.add(job)
        self.scheduler.submit(job)
        try:
            while True:
                kind, value = await events.get()
                if kind == "text":
                    if stats.time_to_first_token_s is None:
                        stats.time_to_first_token_s = time.monotonic() - started
                    yield value
                elif kind == "end":
                    stats.finish_reason = value
                    break
                elif isinstance(value, TimeoutError):
                    raise GenerationTimeout(
                        f"{value} ({self.settings.request_timeout_s:g} s)"
                    ) from None
                else:
                    raise value
        finally:
            # A client that left (or a shutdown) cancels: the slot frees at the next step.
            job.cancel.set()
            with self._jobs_lock:
                self._jobs.discard(job)
            stats.total_s = time.monotonic() - started
            if job.admitted_at is not None:
                stats.queued_s = job.admitted_at - started
            stats.prefix_reused = job.prefix_reused
            stats.completion_tokens = job.produced
            stats.token_logprobs = list(job.logprobs)
            if stats.finish_reason is None:
                stats.finish_reason = "cancelled"

    def prompt_eval_seconds(self, prompt: Prompt) -> float:
        """llama.cpp's own time to evaluate `prompt` in a fresh sequence (benchmarks)."""

        def evaluate() -> float:
            seq = self.context.n_parallel  # the last slot; benchmarks run it idle
            self.context.free_seq(seq)
            self.scheduler.free.forget(seq)
            began = time.perf_counter()
            self.context.prefill(seq, prompt.tokens, 0)
            elapsed = time.perf_counter() - began
            self.context.free_seq(seq)
            return elapsed

        seconds: float = self.scheduler.call(evaluate)
        return seconds

    def ping(self) -> None:
        """Loaded in this process: always ready."""

    def close(self) -> None:
        """Stop the scheduler and free the model."""
        if not self.scheduler.stop():
            # Freeing the context under a running decode would crash the process.
            log.warning("model %s: its worker is still decoding; left to the exit", self.model_id)
            return
        self.context.close()
        if self._adapter is not None:
            import llama_cpp as ll

            ll.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        self._llm.close()


def load_adapter(model: Any, path: Path) -> Any:
    """A GGUF LoRA adapter for `model`, loaded by llama.cpp (CannotChat if it refuses)."""
    import llama_cpp as ll

    adapter = ll.llama_adapter_lora_init(model, str(path).encode("utf-8"))
    if not adapter:
        raise CannotChat(f"{path.name}: llama.cpp cannot load it as a LoRA adapter of this model")
    return adapter
