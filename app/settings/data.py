"""What happens to stored data: how long it is kept (retention), personal data in it
(privacy) and its snapshots (backup).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from app.settings.validation import SECTION_CONFIG

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


class BackupSettings(BaseModel):
    """How snapshots are signed, and where the console finds them (docs/backup.md)."""

    model_config = SECTION_CONFIG

    folder: Path | None = Field(
        None,
        description="Folder of snapshots that the console (/api/admin/backups) lists, "
        "verifies and takes new ones into: the folder `docchat backup create --to` writes "
        "(mount the same volume into the server). None: the console has no Backups to show.",
    )
    keep: int | None = Field(
        None,
        ge=1,
        description="Retention of snapshots taken from the console: the newest N are kept "
        "in `folder`, older ones deleted (as `backup create --keep N`). None: keep all.",
    )

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
