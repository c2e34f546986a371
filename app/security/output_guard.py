"""The last check before an answer leaves: no secret, no API key, no system-prompt
canary, no configured pattern.

Streaming holds back only a tail that could be the start of a secret (or of an API
key), so ordinary text flows at once and no character of a secret is sent before it
can be recognised. Configured patterns are checked on the whole text at every step.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

from app.security.redaction import API_KEY_PATTERN, MIN_SECRET_CHARS

WITHHELD_ANSWER = (
    "The answer was withheld because it contained restricted content. The attempt was "
    "recorded; please rephrase your question."
)


def new_canary() -> str:
    """A random marker planted in the system prompt: seeing it in an answer means the
    model was talked into revealing its instructions."""
    return f"DOCCHAT-CANARY-{secrets.token_hex(8)}"


class OutputGuard:
    """Finds restricted content in model output."""

    def __init__(self, secrets_: list[str], canary: str, patterns: list[str]) -> None:
        self.canary = canary
        self._secrets = [s for s in secrets_ if len(s) >= MIN_SECRET_CHARS]
        self._patterns = [re.compile(p) for p in patterns]
        self._literals = [*self._secrets, canary]

    def violation(self, text: str) -> str | None:
        """The kind of restricted content in `text`, or None."""
        if self.canary in text:
            return "system prompt canary"
        if any(s in text for s in self._secrets):
            return "secret value"
        if API_KEY_PATTERN.search(text):
            return "API key"
        for number, pattern in enumerate(self._patterns, start=1):
            if pattern.search(text):
                return f"blocked pattern {number}"
        return None

    def releasable(self, text: str) -> int:
        """How much of `text` may be sent: all but a tail that could begin a secret."""
        end = hold = len(text)
        for literal in self._literals:
            for k in range(min(len(literal) - 1, end), 0, -1):
                if text.endswith(literal[:k]):
                    hold = min(hold, end - k)
                    break
        start = text.rfind("dck_", max(0, end - 100))
        if start != -1 and not any(c.isspace() for c in text[start:]):
            hold = min(hold, start)
        for k in (3, 2, 1):
            if text.endswith("dck_"[:k]):
                hold = min(hold, end - k)
                break
        return hold

    async def filter(
        self, pieces: AsyncIterator[str], verdict: dict[str, str]
    ) -> AsyncIterator[str]:
        """Pass pieces on, holding back what could begin a secret; stop at the first
        violation and record it in `verdict["blocked"]`. Closing early stops the
        generation."""
        text = ""
        sent = 0
        try:
            async for piece in pieces:
                text += piece
                reason = self.violation(text)
                if reason:
                    verdict["blocked"] = reason
                    return
                safe_end = self.releasable(text)
                if safe_end > sent:
                    yield text[sent:safe_end]
                    sent = safe_end
            reason = self.violation(text)
            if reason:
                verdict["blocked"] = reason
                return
            if len(text) > sent:
                yield text[sent:]
        finally:
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
