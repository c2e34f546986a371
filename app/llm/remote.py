"""The chat model on an OpenAI-compatible server (llama.cpp's llama-server,
llama-cpp-python's server, vLLM): streamed /chat/completions over httpx, with docchat's
own guarantees in front of it: a bounded number of requests in flight (llm.parallel),
a bounded wait queue (llm.queue_size, 429 beyond it), a deadline per answer, the
upstream stream closed when the client leaves, and upstream failures turned into
clear errors that never carry the key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import ssl
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from app.llm.base import (
    Admission,
    EngineUnavailable,
    Generation,
    GenerationStats,
    GenerationTimeout,
    Prompt,
    PromptTooLong,
    Ticket,
)
from app.llm.slots import Slots
from app.settings import LLMSettings
from common.errors import Kind

log = logging.getLogger(__name__)

# Tokens a chat template adds around each message (role header, end marker) and for the
# assistant turn it opens; generous for ChatML, Llama 3 and Gemma templates alike.
TEMPLATE_TOKENS_PER_MESSAGE = 8
# Without the server's tokenizer: UTF-8 bytes per token, low (so the estimate is high)
# for code and non-English text, which BPE vocabularies split finer than English prose.
BYTES_PER_TOKEN_ESTIMATE = 3
# Tokenizer routes relative to the server root, tried in order (same reply shape,
# {"tokens": [...]}): llama-cpp-python's server, then llama.cpp's llama-server and vLLM
# (the first reads "content", the second "prompt").
TOKENIZE_ROUTES = ("/extras/tokenize", "/tokenize")
# How long a count may wait. llama.cpp's llama-server and vLLM tokenize at once, but
# llama-cpp-python's server takes its model lock for it, so while it generates a count
# waits for the whole answer (and such a request would sit outside docchat's own queue
# bound): past this wait, and then whenever docchat has answers in flight, the prompt
# is estimated instead.
TOKENIZE_WAIT_S = 1.0


class RemoteEngine:
    """A chat model served by an OpenAI-compatible server."""

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.remote_url or not settings.remote_model:
            raise ValueError("the remote backend needs llm.remote_url and llm.remote_model")
        self.settings = settings
        self.base_url = settings.remote_url.rstrip("/")
        # The tokenizer routes sit beside /v1, at the server's root.
        self.root_url = self.base_url.removesuffix("/v1")
        self.remote_model = settings.remote_model
        self.model_id = settings.model_id or settings.remote_model
        self.model_sha256: str | None = None  # the server's file is not ours to hash
        self.adapter_sha256: str | None = None
        self._created = int(time.time())
        self._headers: dict[str, str] = {}
        if settings.remote_api_key is not None:
            key = settings.remote_api_key.get_secret_value()
            self._headers["Authorization"] = f"Bearer {key}"
        self._timeout = httpx.Timeout(
            settings.remote_read_timeout_s,
            connect=settings.remote_connect_timeout_s,
            pool=settings.remote_connect_timeout_s,
        )
        # Blocking client for counting tokens and readiness (both run in threads).
        self._tls = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
        self._sync = httpx.Client(timeout=self._timeout, headers=self._headers, verify=self._tls)
        self._tokenize_timeout = httpx.Timeout(
            TOKENIZE_WAIT_S, connect=settings.remote_connect_timeout_s
        )
        self._tokenize_route: str | None = None  # found on first use
        self._tokenizer_missing = False
        self._tokenizer_waits = False  # the server tokenizes only between answers
        self._slots = Slots(settings.parallel)
        self.admission = Admission(settings)

    @property
    def n_ctx(self) -> int:
        """The server's context window per conversation, as configured (llm.n_ctx)."""
        return self.settings.n_ctx

    @property
    def created(self) -> int:
        """When this process started using the model (the server does not say)."""
        return self._created

    @property
    def waiting(self) -> int:
        """Requests waiting for one of the llm.parallel slots."""
        return self._slots.waiting

    @property
    def running(self) -> int:
        """Requests streaming from the server now."""
        return self._slots.held

    def format(self, messages: list[dict[str, str]]) -> Prompt:
        """The messages as they are: the server applies the model's chat template."""
        copied = [{"role": m["role"], "content": m["content"]} for m in messages]
        text = "\n\n".join(f"{m['role']}: {m['content']}" for m in copied)
        return Prompt(text, [], [], messages=copied)

    def check_fits(self, prompt: Prompt, max_tokens: int) -> None:
        """Raise PromptTooLong unless the prompt plus `max_tokens` fit llm.n_ctx.

        The server owns the tokenizer and the chat template. Its tokenizer route counts
        the messages' text exactly; the template's own tokens are an allowance per
        message. A server without a tokenizer route, or one whose tokenizer waits for
        the answer it is generating (TOKENIZE_WAIT_S), gets a byte-based estimate that
        errs high for prose. The count is meant to be at least the real one, so a prompt
        that passes here is not cut off or refused upstream; the price is some context.
        Blocking (an HTTP call): run it off the event loop.
        """
        if prompt.count is None:
            prompt.count = self.count_tokens(prompt)
        if prompt.count + max_tokens > self.n_ctx:
            raise PromptTooLong(
                f"the prompt has about {prompt.count} tokens and the answer may take "
                f"{max_tokens}, more than the model's context of {self.n_ctx} tokens"
            )

    def count_tokens(self, prompt: Prompt) -> int:
        """Tokens of a prompt as the server will see it, counted high (see check_fits)."""
        text = "\n".join(m["content"] for m in prompt.messages)
        counted = self._tokenize(text)
        if counted is None:
            counted = math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)
        return counted + TEMPLATE_TOKENS_PER_MESSAGE * (len(prompt.messages) + 1)

    def _tokenize(self, text: str) -> int | None:
        """Tokens of `text` by the server's tokenizer; None when it offers none."""
        if self._tokenizer_missing or (self._tokenizer_waits and self.running):
            return None
        routes = [self._tokenize_route] if self._tokenize_route else TOKENIZE_ROUTES
        body = {"input": text, "content": text, "prompt": text, "model": self.remote_model}
        for route in routes:
            assert route is not None
            with _translated("tokenize"):
                try:
                    response = self._sync.post(
                        self.root_url + route, json=body, timeout=self._tokenize_timeout
                    )
                except httpx.ReadTimeout:
                    log.info("the model server tokenizes only between answers: estimating")
                    self._tokenizer_waits = True
                    return None
            if response.status_code in (400, 404, 405, 422):
                continue
            _raise_for_status(response, "tokenize")
            try:
                tokens = response.json().get("tokens")
            except (ValueError, AttributeError):
                tokens = None
            if isinstance(tokens, list):
                self._tokenize_route = route
                return len(tokens)
        log.info("the model server has no tokenizer route: prompt sizes are estimated")
        self._tokenizer_missing = True
        return None

    @property
    def in_flight(self) -> int:
        """Answers taken on and not yet ended (reserved, waiting or streaming)."""
        return self.admission.held

    def pin(self) -> RemoteEngine:
        """The engine that serves one answer: itself."""
        return self

    def reserve(self) -> Ticket:
        """A place among the llm.parallel slots and the wait queue, or EngineBusy."""
        return self.admission.reserve()

    def message_tokens(self, message: dict[str, str]) -> int:
        """An estimate that errs high (no network call): exact counts come once the
        prompt is fitted, from check_fits."""
        size = len(message["content"].encode("utf-8"))
        return math.ceil(size / BYTES_PER_TOKEN_ESTIMATE) + TEMPLATE_TOKENS_PER_MESSAGE

    def set_prefix(self, prompt: Prompt) -> None:
        """Nothing to do: llama.cpp's servers keep the previous prompt's evaluation per
        slot and reuse its common prefix themselves (vLLM's prefix caching likewise)."""

    def cached_tokens(self, prompt: Prompt) -> int:
        """Unknown: the server's cache is its own."""
        return 0

    async def yes_share(self, prompt: Prompt, *, deadline: float) -> float | None:
        """See ChatEngine: a server's token probabilities are not read (None)."""
        return None

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        deadline: float | None = None,
        ticket: Ticket | None = None,
    ) -> Generation:
        """The answer, piece by piece; closing it closes the upstream stream, which
        stops the server generating. Without a ticket one is reserved now."""
        max_tokens = max_tokens or self.settings.max_tokens
        if prompt.count is not None:
            self.check_fits(prompt, max_tokens)
        ticket = ticket or self.reserve()
        stats = GenerationStats(prompt_tokens=prompt.n_tokens)
        deadline = deadline or time.monotonic() + self.settings.request_timeout_s
        temperature = self.settings.temperature if temperature is None else temperature
        pieces = self._run(prompt, max_tokens, temperature, deadline, stats)
        return Generation(pieces, stats, ticket)

    async def _run(
        self,
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        monotonic_deadline: float,
        stats: GenerationStats,
    ) -> AsyncGenerator[str, None]:
        if prompt.count is None:  # counting may be an HTTP call
            await asyncio.to_thread(self.check_fits, prompt, max_tokens)
            stats.prompt_tokens = prompt.n_tokens
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (monotonic_deadline - started)
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            stats.total_s = time.monotonic() - started
            stats.finish_reason = "cancelled"
            raise self._timeout_error() from None
        stats.queued_s = time.monotonic() - started
        body = {
            "model": self.remote_model,
            "messages": prompt.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": self.settings.seed,
            # llama.cpp's name for it; servers that do not know it ignore it.
            "repeat_penalty": self.settings.repeat_penalty,
        }
        produced = 0
        try:
            async with contextlib.AsyncExitStack() as stack:
                # A client per answer, not one pooled: its connections would belong to
                # one event loop. The TLS context, the costly part, is shared.
                client = await stack.enter_async_context(
                    httpx.AsyncClient(
                        timeout=self._timeout, headers=self._headers, verify=self._tls
                    )
                )
                with _translated("chat"):
                    async with asyncio.timeout_at(deadline):
                        response = await stack.enter_async_context(
                            client.stream(
                                "POST",
                                self.base_url + "/chat/completions",
                                json=body,
                                headers={"Accept": "text/event-stream"},
                            )
                        )
                        if response.status_code != 200:
                            await response.aread()
                    _raise_for_status(response, "chat")
                    lines = response.aiter_lines()
                    while True:
                        async with asyncio.timeout_at(deadline):
                            line = await anext(lines, None)
                        if line is None:
                            raise EngineUnavailable(
                                Kind.UPSTREAM_FAILED,
                                "model_server_error",
                                "the model server ended the answer early",
                            )
                        if not line.startswith("data:"):
                            continue  # blank separators, comments (pings), event names
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        chunk = _parse_chunk(data)
                        usage = chunk.get("usage") or {}
                        if usage.get("prompt_tokens"):
                            stats.prompt_tokens = int(usage["prompt_tokens"])
                        if usage.get("completion_tokens"):
                            produced = int(usage["completion_tokens"])
                        for choice in chunk.get("choices") or []:
                            piece = (choice.get("delta") or {}).get("content")
                            if choice.get("finish_reason"):
                                stats.finish_reason = str(choice["finish_reason"])
                            if piece:
                                if stats.time_to_first_token_s is None:
                                    stats.time_to_first_token_s = time.monotonic() - started
                                # One streamed piece per token on llama.cpp's servers:
                                # the count until (unless) the server reports usage.
                                stats.completion_tokens += 1
                                yield piece
        except TimeoutError:
            raise self._timeout_error() from None
        finally:
            self._slots.release()
            stats.total_s = time.monotonic() - started
            stats.completion_tokens = max(produced, stats.completion_tokens)
            if stats.finish_reason is None:
                stats.finish_reason = "cancelled"

    def _timeout_error(self) -> GenerationTimeout:
        return GenerationTimeout(
            f"the answer passed its deadline ({self.settings.request_timeout_s:g} s)"
        )

    def ping(self) -> None:
        """Raise EngineUnavailable unless the server lists models with our key."""
        with _translated("models"):
            response = self._sync.get(
                self.base_url + "/models", timeout=self.settings.remote_connect_timeout_s
            )
        _raise_for_status(response, "models")

    def close(self) -> None:
        """Close the pooled connections."""
        self._sync.close()


@contextlib.contextmanager
def _translated(what: str) -> Any:
    """Transport failures as EngineUnavailable; exception text (URLs) stays in the log."""
    try:
        yield
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            log.warning("model server unreachable (%s): %s", what, type(exc).__name__)
            raise EngineUnavailable(
                Kind.UNAVAILABLE,
                "model_unavailable",
                "the model server cannot be reached; try again later",
            ) from None
        log.warning("model server silent too long (%s): %s", what, type(exc).__name__)
        raise EngineUnavailable(
            Kind.TIMEOUT,
            "model_timeout",
            "the model server stopped answering in time",
        ) from None
    except httpx.ConnectError as exc:
        log.warning("model server unreachable (%s): %s", what, type(exc).__name__)
        raise EngineUnavailable(
            Kind.UNAVAILABLE,
            "model_unavailable",
            "the model server cannot be reached; try again later",
        ) from None
    except httpx.HTTPError as exc:
        log.warning("model server connection failed (%s): %s", what, type(exc).__name__)
        raise EngineUnavailable(
            Kind.UPSTREAM_FAILED,
            "model_server_error",
            "the connection to the model server failed",
        ) from None


def _raise_for_status(response: httpx.Response, what: str) -> None:
    """Map an upstream refusal to a docchat error (its body goes to the log only)."""
    status = response.status_code
    if status < 400:
        return
    detail = response.text[:300]  # read already: a streamed error reply is read first
    log.warning("model server answered %s to %s: %s", status, what, detail)
    if status in (401, 403):
        raise EngineUnavailable(
            Kind.UPSTREAM_FAILED,
            "model_server_auth",
            f"the model server refused docchat's API key (HTTP {status}); check llm.remote_api_key",
        )
    if status == 400 and "context" in detail.lower():
        raise PromptTooLong("the prompt does not fit the model server's context window")
    if status in (429, 503):
        raise EngineUnavailable(
            Kind.UNAVAILABLE,
            "model_unavailable",
            f"the model server is busy or starting (HTTP {status})",
        )
    raise EngineUnavailable(
        Kind.UPSTREAM_FAILED,
        "model_server_error",
        f"the model server failed the request (HTTP {status})",
    )


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise EngineUnavailable(
            Kind.UPSTREAM_FAILED,
            "model_server_error",
            "the model server sent an unreadable answer",
        ) from None
    if not isinstance(chunk, dict):
        return {}
    if "error" in chunk:
        log.warning("model server error in the stream: %s", str(chunk["error"])[:300])
        raise EngineUnavailable(
            Kind.UPSTREAM_FAILED,
            "model_server_error",
            "the model server failed while answering",
        )
    return chunk
