"""The last check before an answer leaves: no secret, no API key, no system-prompt
canary or near copy of it or of the system prompt, no configured pattern.

Streaming holds back only a tail that could be the start of a secret (or of an API
key, or of a garbled canary), so ordinary text flows at once and no character of a
secret is sent before it can be recognised. Configured patterns are checked on the
whole text at every step.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

from app.security.leak_check import LeakCheck
from app.security.redaction import API_KEY_PATTERN, MIN_SECRET_CHARS

WITHHELD_ANSWER = (
    "The answer was withheld because it contained restricted content. The attempt was "
    "recorded; please rephrase your question."
)
# A word still being written is held back up to this length, so that a garbled canary
# is judged whole; longer runs without a space (code, URLs) flow on.
HELD_WORD_CHARS = 40
_TRAILING_WORD = re.compile(r"[A-Za-z0-9_-]+\Z")
# Single characters with separators between them ("3 f a 2", "3-f-a-2"), at the end:
# held back like a word, so that a canary spelled out is judged before any of it is sent.
HELD_SPACED_CHARS = 120
_TRAILING_SPACED = re.compile(r"(?:(?<![A-Za-z0-9])[A-Za-z0-9][\s.,_-]{1,3}){2,}[A-Za-z0-9]?\Z")


def new_canary(pinned: str | None = None) -> str:
    """A random marker planted in the system prompt: seeing it in an answer means the
    model was talked into revealing its instructions. `pinned` (security.canary) replaces
    the random part where answers must repeat between processes."""
    return f"DOCCHAT-CANARY-{pinned or secrets.token_hex(8)}"


# The canary evaluations answer with (the release gate, `docchat eval answers`): fixed,
# so that a release measured in two processes gets the same greedy answers and the gate
# compares models, not markers. It guards nothing a user reads.
EVALUATION_CANARY = new_canary("ReleaseEvaluationMarker")


class OutputGuard:
    """Finds restricted content in model output."""

    def __init__(
        self, secrets_: list[str], canary: str, patterns: list[str], system_prompt: str = ""
    ) -> None:
        self.canary = canary
        self._secrets = [s for s in secrets_ if len(s) >= MIN_SECRET_CHARS]
        self._patterns = [re.compile(p) for p in patterns]
        self._literals = [*self._secrets, canary]
        self.leaks = LeakCheck(canary, system_prompt)

    def with_canary(self, canary: str, system_prompt: str) -> OutputGuard:
        """The same guard (secrets, patterns) watching for another canary, planted in
        `system_prompt`."""
        patterns = [p.pattern for p in self._patterns]
        return OutputGuard(self._secrets, canary, patterns, system_prompt)

    def violation(self, text: str) -> str | None:
        """The kind of restricted content in `text`, or None."""
        if self.canary in text or self.leaks.canary_copy(text):
            return "system prompt canary"
        if any(s in text for s in self._secrets):
            return "secret value"
        if API_KEY_PATTERN.search(text):
            return "API key"
        for number, pattern in enumerate(self._patterns, start=1):
            if pattern.search(text):
                return f"blocked pattern {number}"
        if self.leaks.system_prompt_copy(text):
            return "system prompt copy"
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
        word = _TRAILING_WORD.search(text, max(0, end - HELD_WORD_CHARS - 1))
        if word is not None and word.end() - word.start() <= HELD_WORD_CHARS:
            hold = min(hold, word.start())
        spaced = _TRAILING_SPACED.search(text, max(0, end - HELD_SPACED_CHARS - 1))
        if spaced is not None:
            hold = min(hold, spaced.start())
        return hold

    def watch(self, pieces: AsyncIterator[str]) -> GuardedStream:
        """The pieces as they may be sent; see GuardedStream."""
        return GuardedStream(self, pieces)


class GuardedStream:
    """Passes pieces on, holding back what could begin a secret, and stops at the first
    violation, whose kind is then in `violation`. Closing it early (or a violation)
    closes the pieces, which stops the generation."""

    def __init__(self, guard: OutputGuard, pieces: AsyncIterator[str]) -> None:
        self.guard = guard
        self.pieces = pieces
        self.violation: str | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        text = ""
        sent = 0
        try:
            async for piece in self.pieces:
                text += piece
                self.violation = self.guard.violation(text)
                if self.violation:
                    return
                safe_end = self.guard.releasable(text)
                if safe_end > sent:
                    yield text[sent:safe_end]
                    sent = safe_end
            self.violation = self.guard.violation(text)
            if self.violation is None and len(text) > sent:
                yield text[sent:]
        finally:
            close = getattr(self.pieces, "aclose", None)
            if close is not None:
                await close()
