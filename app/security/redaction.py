"""Replace secrets and API keys in any text that leaves the process (logs, errors)."""

from __future__ import annotations

import logging
import re

API_KEY_PATTERN = re.compile(r"dck_[0-9a-f]{12}_[A-Za-z0-9_-]{16,}")
MASK = "[REDACTED]"
# Shorter "secrets" would blank out ordinary words; such values are weak anyway.
MIN_SECRET_CHARS = 6


class Redactor:
    """Knows the secret values and the shape of API keys."""

    def __init__(self, secrets: list[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def redact(self, text: str) -> str:
        """`text` with every secret and API key masked."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return API_KEY_PATTERN.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks secrets, tracebacks included."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, redacted."""
        return self.redactor.redact(super().format(record))


def install(redactor: Redactor, level: str) -> None:
    """Route every log record (uvicorn's too) through one redacting handler on the root."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter(redactor, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for noisy in ("alembic", "chromadb", "sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
