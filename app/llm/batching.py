"""Continuous batching on one llama.cpp context: several sequences decode together.

One worker thread owns the context. Between steps it admits waiting requests into free
sequence slots (the shared system-prompt prefix copied from a cached sequence instead of
evaluated again). Each step is one `llama_decode` of one batch: a token for every
running sequence, plus the next chunk of the prompts still being evaluated (at most
`prefill_chunk` prompt tokens per step while answers are streaming, as llama.cpp's own
server does), so a new question no longer freezes every running answer for its whole
prompt (with `prefill_chunk="auto"` the chunk is sized as the steps go, so that a step
lasts about `step_target_s` whatever the model and the machine). A sequence whose
prompt is done samples its first token from that same step and decodes from the next
one. Each sequence samples with its own sampler and hands its text to the request's
event loop. Throughput grows with concurrent users instead of staying flat, and a
cancelled request frees its slot at the next step, mid-prompt included. A finished
answer's cache stays in its sequence for a follow-up that starts with it (app/llm/kept.py).
"""

from __future__ import annotations

import ctypes
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import llama_cpp as ll
import numpy as np

# Re-exported where they were declared before (the tests import them from here).
from app.llm.chunk_sizer import ChunkSizer
from app.llm.jobs import LOOP_MAX_TOKENS as LOOP_MAX_TOKENS
from app.llm.jobs import LOOP_MIN_TOKENS as LOOP_MIN_TOKENS
from app.llm.jobs import Job
from app.llm.jobs import looping as looping
from app.llm.kept import KeptSequences
from app.llm.lookup import PromptLookup

log = logging.getLogger(__name__)
PREFIX_SEQ = 0  # holds the cached prompt prefix; requests use the ids after it


class BatchedContext:
    """The llama.cpp context, batch and samplers, used only by the worker thread."""

    def __init__(
        self,
        model: Any,
        *,
        n_ctx_per_seq: int,
        n_parallel: int,
        n_batch: int,
        n_threads: int,
        adapter: Any = None,
        n_kept: int = 0,
    ) -> None:
        self.model = model
        self.vocab = ll.llama_model_get_vocab(model)
        self.n_vocab = int(ll.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_parallel = n_parallel
        # Sequences beyond n_parallel: room for finished answers' caches under load.
        self.n_seqs = n_parallel + n_kept
        params = ll.llama_context_default_params()
        # One extra sequence keeps the cached prefix. Each sequence gets a KV stream of
        # its own (not unified): measured here, that is faster, and a sequence's
        # attention then never depends on its neighbours, so a batched answer is the
        # same as the answer generated alone (greedy decoding).
        params.n_seq_max = self.n_seqs + 1
        params.n_ctx = n_ctx_per_seq * (self.n_seqs + 1)
        params.n_batch = max(n_batch, n_parallel)
        params.n_ubatch = max(n_batch, n_parallel)
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = False
        self.ctx = ll.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create the batched context")
        if adapter is not None:
            # The LoRA adapter applies to every sequence of this context, at scale 1.
            adapters = (ll.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            if ll.llama_set_adapters_lora(self.ctx, adapters, 1, scales) != 0:
                ll.llama_free(self.ctx)
                raise RuntimeError("llama.cpp could not apply the LoRA adapter")
        self.n_batch = int(params.n_batch)
        self.batch = ll.llama_batch_init(self.n_batch, 0, params.n_seq_max)
        self.memory = ll.llama_get_memory(self.ctx)
        self.prefix: list[int] = []

    def _fill(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """entries: (token, position, sequence, wants logits)."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode; raises on failure (e.g. no KV cells left)."""
        self._fill(entries)
        result = ll.llama_decode(self.ctx, self.batch)
        if result != 0:
            raise RuntimeError(f"llama_decode failed ({result})")

    def prefill(self, seq: int, tokens: list[int], start: int) -> None:
        """Evaluate tokens[start:] for `seq` in chunks; logits only for the last one."""
        for chunk in range(start, len(tokens), self.n_batch):
            piece = tokens[chunk : chunk + self.n_batch]
            last = chunk + len(piece) == len(tokens)
            self.decode(
                [(t, chunk + i, seq, last and i == len(piece) - 1) for i, t in enumerate(piece)]
            )

    def set_prefix(self, tokens: list[int]) -> None:
        """Evaluate a prompt prefix once into the cache sequence."""
        ll.llama_memory_seq_rm(self.memory, PREFIX_SEQ, -1, -1)
        self.prefix = []
        if tokens:
            self.prefill(PREFIX_SEQ, tokens, 0)
            self.prefix = list(tokens)

    def reuse_prefix(self, seq: int, tokens: list[int]) -> int:
        """Copy the cached prefix into `seq` when the prompt starts with it; its length."""
        n = len(self.prefix)
        # The last prompt token must be evaluated here to get its logits.
        if n == 0 or len(tokens) <= n or tokens[:n] != self.prefix:
            return 0
        # The whole prefix sequence (all it holds): streams copy only whole buffers.
        ll.llama_memory_seq_cp(self.memory, PREFIX_SEQ, seq, -1, -1)
        return n

    def free_seq(self, seq: int) -> None:
        """Drop a sequence's cells."""
        ll.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def trim(self, seq: int, keep: int) -> bool:
        """Drop a sequence's cells from position `keep` on; whether the model allows it
        (a recurrent model's state cannot be cut: then the caller starts over)."""
        return bool(ll.llama_memory_seq_rm(self.memory, seq, keep, -1))

    def new_sampler(self, job: Job) -> Any:
        """Top-k, penalties, then greedy (temperature 0) or temperature + seeded sampling."""
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        # Candidates cut to the top 40 first: the penalty sampler (and greedy) would
        # otherwise scan the whole vocabulary for every token of every sequence.
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(40))
        if job.repeat_penalty != 1.0:
            ll.llama_sampler_chain_add(
                chain,
                ll.llama_sampler_init_penalties(self.n_vocab, 64, job.repeat_penalty, 0.0, 0.0),
            )
        if job.temperature <= 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        else:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(job.temperature))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(job.seed))
        return chain

    def sample(self, job: Job, index: int) -> int:
        """Sample (and accept) the next token of `job` from batch row `index`."""
        return int(ll.llama_sampler_sample(job.sampler, self.ctx, index))

    def _logits(self, index: int) -> Any:
        """Batch row `index`'s logits, as a view (valid until the next decode)."""
        return np.ctypeslib.as_array(ll.llama_get_logits_ith(self.ctx, index), (self.n_vocab,))

    def logprob(self, index: int, token: int) -> float:
        """The log-probability batch row `index` gives `token` (softmax of the raw
        logits, before any sampler: the model's own confidence)."""
        row = self._logits(index)
        top = float(row.max())
        return float(row[token]) - top - math.log(float(np.exp(row - top).sum()))

    def choice_share(self, index: int, yes: list[int], no: list[int]) -> float:
        """P(yes) / (P(yes) + P(no)) at batch row `index`, each side summed over its
        spellings ("yes", "Yes", ...)."""
        row = self._logits(index)
        top = float(row.max())
        p_yes = float(np.exp(row[yes] - top).sum()) if yes else 0.0
        p_no = float(np.exp(row[no] - top).sum()) if no else 0.0
        return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5

    def is_end(self, token: int) -> bool:
        """End of generation (EOS, end of turn)."""
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for."""
        buffer = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:n]

    def close(self) -> None:
        """Free the batch and the context (the model belongs to its owner)."""
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)


class BatchScheduler:
    """Runs the worker thread; requests come in through a thread-safe queue.

    `prefill_chunk`: most prompt tokens evaluated per step while answers are decoding
    (0: a new prompt is evaluated whole in the step that admits it, and every running
    answer waits for it; "auto": as many as keep a step near `step_target_s`, learnt from
    the steps before). With no answer decoding nobody waits, so prompts then go a full
    batch (`n_batch` tokens) per step."""

    def __init__(
        self,
        context: BatchedContext,
        *,
        prefill_chunk: int | Literal["auto"] = 64,
        step_target_s: float = 0.25,
        cache_max_age_s: float = 900.0,
        lookup_tokens: int = 0,
    ) -> None:
        self.context = context
        self.lookup_tokens = lookup_tokens
        self.prefill_chunk = prefill_chunk
        self.chunk_sizer = ChunkSizer(step_target_s, context.n_batch)
        self.incoming: queue.Queue[Job | None] = queue.Queue()
        self.free = KeptSequences(list(range(1, context.n_seqs + 1)), cache_max_age_s)
        self.prefilling: list[Job] = []  # admitted, prompt not fully evaluated (in order)
        self.active: list[Job] = []  # decoding
        self.steps = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="llama-batch", daemon=True)
        self._control: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Hand a job to the worker."""
        self.incoming.put(job)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the worker thread between steps (the context is not thread-safe)."""
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._control.put((fn, reply))
        self.incoming.put(None)  # wake the worker if it is idle
        outcome, value = reply.get()
        if outcome == "error":
            raise value
        return value

    def stop(self) -> bool:
        """Cancel everything and end the worker; whether it ended (a decode step that
        outlasts the wait, on a starved machine, keeps it running a while longer)."""
        for job in [*self.prefilling, *self.active]:
            job.cancel.set()
        self._stopping = True
        self.incoming.put(None)  # wake the worker if it is idle
        self._thread.join(timeout=30)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping:
            self._run_control()
            self._admit(block=not (self.active or self.prefilling))
            if self.active or self.prefilling:
                try:
                    self._step()
                except Exception as exc:  # a failed decode ends every job in the batch
                    log.exception("batched decode failed")
                    for job in [*self.prefilling, *self.active]:
                        self._finish(job, "error", exc)
        for job in [*self.prefilling, *self.active]:
            self._finish(job, "end", "cancelled")

    def _run_control(self) -> None:
        while True:
            try:
                fn, reply = self._control.get_nowait()
            except queue.Empty:
                return
            try:
                reply.put(("ok", fn()))
            except Exception as exc:
                reply.put(("error", exc))

    def _admit(self, *, block: bool) -> None:
        for seq in self.free.expired():  # a conversation's cache outlives no one's wait
            self.context.free_seq(seq)
        while self.free and len(self.active) + len(self.prefilling) < self.context.n_parallel:
            try:
                job = self.incoming.get(timeout=0.5) if block else self.incoming.get_nowait()
            except queue.Empty:
                return
            block = False
            if job is None:
                continue
            if job.cancel.is_set():
                job.emit("end", "cancelled")
                continue
            if time.monotonic() > job.deadline:
                job.emit("error", TimeoutError("the request waited past its deadline"))
                continue
            self._start(job)

    def _start(self, job: Job) -> None:
        """Give the job a sequence (with the cached prefix when its prompt starts with
        it); the rest of its prompt is evaluated by the next steps."""
        ctx = self.context
        job.seq, held = self.free.take(job.tokens)
        job.admitted_at = time.monotonic()
        job.sampler = ctx.new_sampler(job)
        try:
            if held and not ctx.trim(job.seq, held):
                held = 0
            if held < len(ctx.prefix):  # the cached system prompt gives more (a copy
                held = ctx.reuse_prefix(job.seq, job.tokens) or held  # overwrites it)
            if not held:
                ctx.free_seq(job.seq)  # whatever a finished answer left there
        except Exception as exc:
            self._finish(job, "error", exc)
            return
        job.prefix_reused = job.evaluated = job.cells = held
        self.prefilling.append(job)

    def _prompt_budget(self) -> int:
        """Prompt tokens this step may evaluate besides the decoding sequences."""
        chunk = self.chunk_sizer.chunk if self.prefill_chunk == "auto" else self.prefill_chunk
        if chunk <= 0:
            return sum(len(job.tokens) - job.evaluated for job in self.prefilling)
        if not self.active:
            return max(chunk, self.context.n_batch)
        return chunk

    def _step(self) -> None:
        ctx = self.context
        for job in list(self.prefilling):  # no more of a prompt nobody waits for
            if job.cancel.is_set():
                self._finish(job, "end", "cancelled")
            elif time.monotonic() > job.deadline:
                self._finish(job, "error", TimeoutError("the answer ran past its deadline"))
        # Rows: (token, position, sequence, wants logits); `owners` maps a row with
        # logits to the job that samples from it and the row's place among its drafts.
        rows: list[tuple[int, int, int, bool]] = []
        owners: dict[int, tuple[Job, int]] = {}
        drafts: dict[Job, list[int]] = {}
        for job in self.active:
            drafts[job] = self._draft(job)
            for i, token in enumerate([job.last, *drafts[job]]):
                owners[len(rows)] = (job, i)
                rows.append((token, job.pos - 1 + i, job.seq, True))
        decoding = len(rows)
        budget = budget_before = self._prompt_budget()
        for job in self.prefilling:
            if budget <= 0:
                break
            end = min(len(job.tokens), job.evaluated + budget)
            for pos in range(job.evaluated, end):
                if pos == len(job.tokens) - 1:  # the prompt's last token: its logits
                    owners[len(rows)] = (job, 0)
                rows.append((job.tokens[pos], pos, job.seq, pos == len(job.tokens) - 1))
            budget -= end - job.evaluated
            job.evaluated = end
        # One llama_decode, unless the rows outgrow a batch (prefill_chunk larger than
        # n_batch, or 0): logits are read after each, before the next overwrites them.
        by_seq = {job.seq: job for job in self.prefilling}
        rejected: set[Job] = set()  # a draft token the model did not write: rows after it void
        began = time.perf_counter()
        for first in range(0, len(rows), ctx.n_batch):
            ctx.decode(rows[first : first + ctx.n_batch])
            for _token, pos, seq, _logits in rows[max(first, decoding) : first + ctx.n_batch]:
                by_seq[seq].cells = pos + 1  # prompt rows of a sequence come in order
            for index in range(first, min(first + ctx.n_batch, len(rows))):
                if index not in owners:
                    continue
                owner, i = owners[index]
                if owner in self.prefilling:  # prompt done: it decodes from the next step
                    self.prefilling.remove(owner)
                    owner.pos = len(owner.tokens)
                    self.active.append(owner)
                elif owner not in self.active or owner in rejected:  # ended meanwhile
                    continue
                else:  # the cells up to this row hold what the model wrote
                    owner.cells = owner.pos
                token = ctx.sample(owner, index - first)
                if owner.choices is not None and owner.choice_share is None:
                    owner.choice_share = ctx.choice_share(index - first, *owner.choices)
                self._accept(owner, token, ctx.logprob(index - first, token))
                draft = drafts.get(owner, [])
                if i < len(draft) and token != draft[i] and owner in self.active:
                    rejected.add(owner)
                    ctx.trim(owner.seq, owner.cells)
        # A mixed step with a whole chunk teaches the chunk size (a prompt's short tail
        # would make the decode rows look like the chunk's cost).
        learning = self.prefill_chunk == "auto" and decoding
        if learning and len(rows) - decoding == budget_before:
            self.chunk_sizer.observe(budget_before, time.perf_counter() - began)
        self.steps += 1

    def _draft(self, job: Job) -> list[int]:
        """Tokens to try after the job's next one (prompt lookup; greedy jobs only)."""
        if self.lookup_tokens <= 0 or job.temperature > 0:
            return []
        if job.lookup is None:
            job.lookup = PromptLookup(job.tokens + job.written)
        room = min(job.max_tokens - job.produced, self.context.n_ctx_per_seq - job.pos) - 1
        return job.lookup.draft(min(self.lookup_tokens, room))

    def _accept(self, job: Job, token: int, logprob: float) -> None:
        """Emit a sampled token, or finish the job; the token is decoded next step."""
        ctx = self.context
        if job.cancel.is_set():
            self._finish(job, "end", "cancelled")
            return
        if ctx.is_end(token) and not job.ignore_eos:
            self._finish(job, "end", "stop")
            return
        text = job.decoder.decode(ctx.piece(token))
        if text:
            job.emit("text", text)
        job.produced += 1
        job.last = token
        job.pos += 1
        job.written.append(token)
        job.logprobs.append(logprob)
        if job.lookup is not None:
            job.lookup.add(token)
        if job.stop_repeats and looping(job.written, job.stop_repeats):
            self._finish(job, "end", "repetition")
        elif job.produced >= job.max_tokens or job.pos >= ctx.n_ctx_per_seq:
            self._finish(job, "end", "length")
        elif time.monotonic() > job.deadline:
            self._finish(job, "error", TimeoutError("the answer ran past its deadline"))

    def _finish(self, job: Job, kind: str, value: Any) -> None:
        if job in self.active:
            self.active.remove(job)
        if job in self.prefilling:
            self.prefilling.remove(job)
        if job.seq > 0:
            # What the cells hold stays for a follow-up, unless a decode failed.
            held = None if kind == "error" else (job.tokens + job.written)[: job.cells]
            if held is None:
                self.context.free_seq(job.seq)
            self.free.give_back(job.seq, held)
            job.seq = -1
        if job.sampler is not None:
            ll.llama_sampler_free(job.sampler)
            job.sampler = None
        job.emit(kind, value)
