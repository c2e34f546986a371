"""Replace secrets and API keys in any text that leaves the process (logs, errors)."""

from __future__ import annotations

import re
from collections.abc import Callable

API_KEY_PATTERN = re.compile(r"dck_[0-9a-f]{12}_[A-Za-z0-9_-]{16,}")
MASK = "[REDACTED]"
# Shorter "secrets" would blank out ordinary words; such values are weak anyway.
MIN_SECRET_CHARS = 6


class Redactor:
    """Knows the secret values and the shape of API keys."""

    def __init__(self, secrets: list[str], also: Callable[[str], str] | None = None) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None
        # A further redaction after the secrets (personal data, when it is on).
        self._also = also

    def redact(self, text: str) -> str:
        """`text` with every secret and API key masked (and what `also` replaces)."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = API_KEY_PATTERN.sub(MASK, text)
        return self._also(text) if self._also is not None else text
