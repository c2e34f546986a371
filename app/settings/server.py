"""The HTTP server (server) and who may call it, how much, and what may never leave it
(security).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, field_validator

from app.settings.validation import SECTION_CONFIG, invalid_patterns


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
        description="Require an API key (or, with sign-in configured, a signed-in person or "
        "the provider's bearer token) on every route but /healthz, /readyz, the sign-in "
        "routes and the static chat page. Empty: on in production and wherever oidc.issuer "
        "is set, off otherwise.",
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
        "Set it only where the server's greedy answers must repeat between processes "
        "(the tests, a benchmark); evaluations and the release gate plant a fixed "
        "evaluation marker of their own.",
    )
