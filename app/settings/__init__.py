"""The settings tree: every knob docchat has, where it is declared and documented.

Values come from, highest priority first: arguments to ``load_settings``, environment
variables (``DOCCHAT_`` prefix, ``__`` between levels, e.g. ``DOCCHAT_LLM__N_CTX``),
a ``.env`` file, one file per value in the secrets directory (named like the variable
without the prefix, e.g. ``database__url``), then the defaults below. The defaults are
the embedded ones: SQLite and an on-disk Chroma under ``data_dir`` and the models that
pip installs.

Each section is declared, with its descriptions, in the module named for what it holds
(models, stores, ingest, answers, server, signin, observability, data); the tree and its
loading in loading.py. Import from here: ``from app.settings import Settings``.
"""

from app.settings.answers import RagSettings
from app.settings.data import (
    PII_KINDS,
    BackupSettings,
    PiiKind,
    PrivacySettings,
    RetentionSettings,
)
from app.settings.ingest import IngestSettings
from app.settings.loading import (
    DEFAULT_SECRETS_DIR,
    ENV_PREFIX,
    Settings,
    load_settings,
    settings_files,
)
from app.settings.models import EmbeddingSettings, GateSet, LLMSettings, ModelSettings
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
from app.settings.validation import SECTION_CONFIG, has_user_info, invalid_patterns

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "ENV_PREFIX",
    "PII_KINDS",
    "SECTION_CONFIG",
    "AlertSettings",
    "AnomalySettings",
    "BackupSettings",
    "DatabaseSettings",
    "EmbeddingSettings",
    "GateSet",
    "IngestSettings",
    "LLMSettings",
    "LoggingSettings",
    "ModelSettings",
    "OidcSettings",
    "PiiKind",
    "PrivacySettings",
    "RagSettings",
    "RetentionSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "SourceSettings",
    "TelemetrySettings",
    "VectorSettings",
    "has_user_info",
    "invalid_patterns",
    "load_settings",
    "settings_files",
]
