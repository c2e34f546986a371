"""Near copies of what the system prompt holds: the canary with characters changed,
and the prompt's sentences copied with small edits or reworded.

An exact match is not enough: sampling at a temperature above zero garbles a copied
marker (a probe saw 10 of its 16 hex characters right) and rewords a copied sentence.
Thresholds were set by measurement (benchmarks/leak_check.py prints them again):
copies with light edits score 79-95 on the lexical scale and 0.92 on the semantic
one, while no sentence of 17,000 windows of real documentation and code scored over
69 lexically, and none of docs/ or the test corpus over 0.70 semantically.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

# A canary's random part with at most this many edits (of 16 characters) still counts:
# 9 of 16 right is caught, and no run in 31 MB of code and HTML matched by chance.
CANARY_EDITS = 7
# Runs of letters and digits shorter than this are never judged against the canary.
MIN_RUN_CHARS = 10
# The marker's name, however it is spelled out.
MARKER_NAME = re.compile(r"docchat\W{0,3}canary", re.IGNORECASE)
# Lexical similarity (0-100, rapidfuzz's ratio of the normalized sentences) from which
# an answer sentence is a copy of a system-prompt sentence.
COPY_RATIO = 78.0
# Cosine similarity of sentence embeddings from which an answer sentence rewords one.
PARAPHRASE_COSINE = 0.85
# Cosine similarity of the whole answer's embedding to the whole system prompt's from
# which the answer summarizes it (issue 22): summaries and rewordings spread over
# several sentences scored 0.69-0.83, while no answer of eval/curated_docs.jsonl scored
# over 0.54 nor any window of docs/ over 0.55 (tests/security/test_leak_check.py).
SUMMARY_COSINE = 0.65
# System-prompt sentences need this many words to be judged (shorter ones are common).
MIN_WORDS = 4

# Written out of shape (issue 22): characters spaced or hyphenated apart, groups joined
# by underscores, reversed, base64 or hex. Such text is judged on its skeleton (letters
# and digits only, lower case), forwards and backwards, and on what its encoded runs
# decode to, with at most this many edits: a random 16-hex-character part is never
# within 3 edits of 16 letters of prose by chance, while a copy written out of shape
# keeps its characters.
SHAPED_EDITS = 3
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9A-Fa-f]{2}){10,}")
_RUN = re.compile(r"[A-Za-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+|\n+")

Embed = Callable[[list[str]], list[list[float]]]


def normalized(text: str) -> str:
    """Lower-case words, punctuation gone."""
    return " ".join(_WORD.findall(text.lower()))


def sentences(text: str) -> list[str]:
    """The sentences of `text` long enough to judge."""
    return [s for s in _SENTENCE.split(text) if len(_WORD.findall(s.lower())) >= MIN_WORDS]


class LeakCheck:
    """Knows the canary and the system prompt; judges answers against them."""

    def __init__(self, canary: str, system_prompt: str) -> None:
        self.canary_part = canary.rsplit("-", 1)[-1].lower()
        # The marker line is left to the canary checks: its words are few and common.
        self.system_sentences = [s for s in sentences(system_prompt) if canary not in s]
        self._normalized = [normalized(s) for s in self.system_sentences]
        self._vectors: np.ndarray | None = None  # the sentences', then the whole prompt's

    def canary_copy(self, text: str) -> bool:
        """Whether the marker's name, or a run of letters and digits within a few edits
        of its random part, is in `text`, as it is or written out of shape."""
        if MARKER_NAME.search(text):
            return True
        if self._shaped_copy(text):
            return True
        needle = self.canary_part
        # Edits allowed in proportion to the part's length (new_canary makes 16).
        allowed = CANARY_EDITS * len(needle) // 16
        if len(needle) < MIN_RUN_CHARS:
            return False  # too short to judge by distance (tests plant such canaries)
        for match in _RUN.finditer(text):
            run = match.group().lower()
            if len(run) < MIN_RUN_CHARS:
                continue
            # The run may carry more than the random part ("canary3fa2…"): judge every
            # window of the needle's length, give or take a few characters.
            for size in {min(len(run), len(needle) + d) for d in (-2, 0, 2)}:
                for start in range(len(run) - size + 1):
                    window = run[start : start + size]
                    if Levenshtein.distance(needle, window, score_cutoff=allowed) <= allowed:
                        return True
        return False

    def _shaped_copy(self, text: str) -> bool:
        """The canary spaced out, joined by underscores, reversed or encoded."""
        needle = self.canary_part
        if len(needle) < MIN_RUN_CHARS:
            return False
        for variant in _skeletons(text):
            if "docchatcanary" in variant or _near(needle, variant, SHAPED_EDITS):
                return True
        return False

    def system_prompt_copy(self, text: str) -> bool:
        """Whether a sentence of `text` is a near copy of a system-prompt sentence."""
        for sentence in sentences(text):
            words = normalized(sentence)
            for system in self._normalized:
                if fuzz.ratio(words, system, score_cutoff=COPY_RATIO):
                    return True
        return False

    def paraphrase(self, text: str, embed: Embed) -> bool:
        """Whether a sentence of `text` means what a system-prompt sentence says, or
        the whole of `text` sums up the system prompt (blocking: it embeds the answer's
        sentences and the answer)."""
        found = sentences(text)
        if not found or not self.system_sentences:
            return False
        if self._vectors is None:
            whole = " ".join(self.system_sentences)
            self._vectors = np.asarray(embed([*self.system_sentences, whole]), dtype=np.float32)
        # The whole text on its own: in one batch with the sentences, every sentence
        # would be padded to its length (a long answer's 20 sentences cost 5x more).
        vectors = np.asarray(embed(found), dtype=np.float32)
        if (vectors @ self._vectors[:-1].T).max() >= PARAPHRASE_COSINE:
            return True
        whole = np.asarray(embed([text]), dtype=np.float32)[0]
        return bool(whole @ self._vectors[-1] >= SUMMARY_COSINE)


def skeleton(text: str) -> str:
    """Letters and digits only, lower case: separators between characters gone."""
    return _NOT_ALNUM.sub("", text.lower())


def _decoded(text: str) -> Iterator[str]:
    """What the base64 and hex runs of `text` decode to, bytes read as Latin-1."""
    for match in _BASE64_RUN.finditer(text):
        # The URL-safe alphabet's two characters read as the standard one's.
        run = match.group().rstrip("=").replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue
        yield raw.decode("latin-1")
    for match in _HEX_RUN.finditer(text):
        yield bytes.fromhex(match.group()).decode("latin-1")


def _skeletons(text: str) -> Iterator[str]:
    """The skeletons to judge: the text's and its decoded runs', each both ways."""
    for source in (text, *_decoded(text)):
        shape = skeleton(source)
        yield shape
        yield shape[::-1]


def _near(needle: str, haystack: str, edits: int) -> bool:
    """Whether a window of `haystack` is within `edits` of `needle`. A match keeps one
    of `edits + 1` pieces of the needle exact (pigeonhole), so only the places where a
    piece occurs are measured."""
    if needle in haystack:
        return True
    pieces = edits + 1
    size = len(needle) // pieces
    for index in range(pieces):
        offset = index * size
        piece = needle[offset : offset + size]
        start = haystack.find(piece)
        while start != -1:
            base = start - offset
            for length in range(len(needle) - edits, len(needle) + edits + 1):
                for shift in range(-edits, edits + 1):
                    begin = max(0, base + shift)
                    window = haystack[begin : begin + length]
                    if Levenshtein.distance(needle, window, score_cutoff=edits) <= edits:
                        return True
            start = haystack.find(piece, start + 1)
    return False
