"""The whole settings tree (Settings), the sources it reads in order, and load_settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.settings.answers import RagSettings
from app.settings.data import BackupSettings, PrivacySettings, RetentionSettings
from app.settings.ingest import IngestSettings
from app.settings.models import EmbeddingSettings, LLMSettings, ModelSettings
from app.settings.observability import (
    AlertSettings,
    AnomalySettings,
    LoggingSettings,
    TelemetrySettings,
)
from app.settings.server import SecuritySettings, ServerSettings
from app.settings.signin import OidcSettings
from app.settings.sources import SourceSettings
from app.settings.stores import DatabaseSettings, VectorSettings

ENV_PREFIX = "DOCCHAT_"
DEFAULT_SECRETS_DIR = "/run/secrets"


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
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    anomalies: AnomalySettings = Field(default_factory=AnomalySettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    sources: SourceSettings = Field(default_factory=SourceSettings)

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
        """Whether callers must authenticate (the setting; else on in production, and
        wherever sign-in is configured: configuring it says who may come in)."""
        if self.security.auth_enabled is None:
            return self.env == "production" or self.oidc.enabled
        return self.security.auth_enabled

    @property
    def session_cookie_secure(self) -> bool:
        """Whether the session cookie is Secure (the setting, or on outside development)."""
        if self.oidc.cookie_secure is None:
            return self.env != "development"
        return self.oidc.cookie_secure

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
