"""The passage shown in place of an answer its sources do not support.

It is the best-ranked passage, word for word and cited, cut to be read: it starts where
a reader can start (a chunk may open in the middle of a sentence, a code line or even a
word, since long paragraphs are split to fit the embedding window), it ends at a
paragraph or sentence end, a code block cut open is closed again, and the one or two
sentences most like the question are in bold, so the reader finds the answer in it.
"""

from __future__ import annotations

import re

import numpy as np

from app.llm.embedder import Embed
from app.store.vectors import Hit

PASSAGE_INTRO = (
    "The documentation does not say this in so many words, so here is the passage that "
    "comes closest, as written"
)
# Where only the model's own doubt flagged its answer (checks.unsure_only), the passage
# may well say it plainly: the model's wording is what was not trusted.
UNSURE_INTRO = (
    "The model was not sure of its own answer, so here is the passage closest to your "
    "question instead, as written"
)
PASSAGE_INTROS = (PASSAGE_INTRO, UNSURE_INTRO)
# A passage is cut near this length, at a paragraph or a sentence end where one is close.
PASSAGE_CHARS = 900
# Sentences in bold: the best, and the next while it is nearly as close.
MARKED_MAX = 2
MARKED_MARGIN = 0.05
# What of each paragraph is compared with the question when choosing where to start:
# its opening says what it is about, and embedding costs by the token.
BLOCK_CHARS = 300


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
# Where a sentence ends and the next begins (a capital, a digit, code or a quote next).
_SENTENCE_START = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*])")
# What a paragraph that opens a passage can begin with (a lowercase word may too: see
# opens); a stray symbol is the middle of something cut.
_OPENS = re.compile(r"[A-Z0-9#>|`~\"'(\[*]|[-+] ")
_CLOSERS = (("(", ")"), ("[", "]"), ("{", "}"))
_CLAUSE_END = re.compile(r"[.!?;:](?=\s)")
# Words that carry a sentence on and begin no command or code line (unlike "from",
# "if", "for", "with"): a block opening with one is the rest of a sentence that a split
# cut ("only\na SIGKILL in the middle of…").
# fmt: off
_CONTINUATIONS = frozenset({
    "a", "an", "are", "but", "by", "its", "of", "on", "only", "so", "than", "that",
    "the", "these", "this", "those", "to", "when", "where", "which",
})
# fmt: on
# What marks a line as code or a command rather than words of a sentence.
_CODE_MARKS = re.compile(r"[-/=_`$(){}\[\]<>|@#]")


def opens(block: str) -> bool:
    """Whether a reader can start at this paragraph: not the rest of a sentence, a line
    or a word that a split cut (`false}' …/activate`, `ing the widget, then…`)."""
    text = block.lstrip()
    if not text:
        return False
    if _OPENS.match(text) or re.match(r"--?[A-Za-z]", text):  # or an option's name
        return True
    if not text[0].islower():
        return False
    line = text.split("\n", 1)[0].rstrip()
    token = line.split()[0]
    if token in _CONTINUATIONS or _prose_fragment(text):
        return False
    if any(line.count(b) > line.count(a) for a, b in _CLOSERS):
        return False  # closes what it never opened: the tail of a token or a sentence
    if token.count("'") % 2 or token.count('"') % 2:
        return False
    # A lowercase line is a command or a name (`docchat config show`, `pip install`)
    # unless it reads as the end of a sentence.
    return not (line.endswith((".", ",", ";", ":")) or ". " in line)


def _wrapped_prose(block: str) -> bool:
    """Whether a block is wrapped lines of prose (a paragraph, list items), not code or
    a table, so that a sentence may start on any of its lines."""
    lines = block.strip("\n").split("\n")
    code_or_table = any(
        line.startswith(("    ", "\t", "$ ")) or _FENCE.match(line) or " | " in line
        for line in lines
    )
    # A middle line of a few words at most ("...", a lone token) is output, not prose.
    return len(lines) > 1 and not code_or_table and all(len(x.split()) >= 3 for x in lines[1:-1])


def _prose_fragment(block: str) -> bool:
    """Whether a lowercase block is the rest of a wrapped sentence ("pages\n  show), a
    conversation's history…"): its first line has no mark of code and the lines under
    it carry on to a sentence's end."""
    text = block.strip()
    first, _, rest = text.partition("\n")
    if not rest or _CODE_MARKS.search(first):
        return False
    flat = " ".join(text.split())
    return ". " in flat or flat.endswith((".", "!", "?"))


def closest_passage(
    hits: list[Hit], question: str = "", embed: Embed | None = None, unsure: bool = False
) -> str:
    """The best-ranked passage as Markdown: readable start and end, the sentences closest
    to `question` in bold (when an embedder is given), quoted and cited. `unsure`: the
    answer was replaced for the model's doubt alone, which the lead-in says."""
    hit = hits[0]
    text = _from_a_start(hit.text.strip())
    if embed is not None and question:
        # A paragraph jumped to may itself open mid-sentence: find a start again.
        text = _from_a_start(_from_the_closest_section(text, question, embed))
    text = _cut(text)
    if embed is not None and question:
        text = mark_closest(text, question, embed)
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    source = hit.metadata.get("source", "")
    intro = UNSURE_INTRO if unsure else PASSAGE_INTRO
    # The citation mark in the lead-in: after the quote it stood alone on a line.
    marked = " (the closest sentences in bold)" if "**" in text else ""
    return f"{intro}, from {source} [1]{marked}:\n\n{quoted}"


def readable(text: str) -> str:
    """`text` from its first real start to a clean end near PASSAGE_CHARS."""
    return _cut(_from_a_start(text.strip()))


def _cut(text: str) -> str:
    """`text` ended cleanly near PASSAGE_CHARS, a code block it leaves open closed."""
    cut = len(text) > PASSAGE_CHARS
    if cut:
        head = text[:PASSAGE_CHARS]
        # At a paragraph's end, else at the last end of a sentence or clause (".", ":",
        # ";": where a long paragraph is split) that keeps half the passage.
        ends = [m.start() for m in _CLAUSE_END.finditer(head)]
        end = max(head.rfind("\n\n"), ends[-1] if ends else -1)
        text = (head[: end + 1] if end > PASSAGE_CHARS // 2 else head).rstrip() + " …"
    return _balanced_fences(text, cut)


def _from_a_start(text: str) -> str:
    blocks = text.split("\n\n")
    for i, block in enumerate(blocks):
        if opens(block):
            return "\n\n".join(blocks[i:])
        # A block cut mid-sentence may still hold the start of the next sentence.
        found = _SENTENCE_START.search(block)
        if found and ("\n" not in block[: found.start()] or _wrapped_prose(block)):
            return "\n\n".join([block[found.end() :], *blocks[i + 1 :]])
    return text  # no start anywhere: better the text as it is than nothing


def _blocks(text: str) -> list[str]:
    """Paragraphs, a fenced code block (blank lines and all) being one."""
    blocks: list[str] = []
    open_fence = False
    for block in text.split("\n\n"):
        if open_fence:
            blocks[-1] += "\n\n" + block
        else:
            blocks.append(block)
        fences = sum(1 for line in block.split("\n") if _FENCE.match(line))
        open_fence = open_fence != (fences % 2 == 1)
    return blocks


def _closeness(embed: Embed, question: str, texts: list[str]) -> list[float]:
    """Each text's cosine to the question (the embedder's vectors are normalized)."""
    vectors = np.array(embed([question, *texts]))
    return [float(s) for s in vectors[1:] @ vectors[0]]


def _from_the_closest_section(text: str, question: str, embed: Embed) -> str:
    """The section holding the paragraph most like the question, from its heading to the
    next, when that is not the first: the answering line should not sit in the middle."""
    blocks = _blocks(text)
    if len(blocks) < 2:
        return text
    scores = _closeness(embed, question, [b[:BLOCK_CHARS] for b in blocks])
    best = max(range(len(blocks)), key=lambda i: scores[i])
    heading = next((i for i in range(best, 0, -1) if _is_heading(blocks[i])), None)
    if heading is not None:
        # That section alone: the next heading starts another subject.
        end = next((i for i in range(best + 1, len(blocks)) if _is_heading(blocks[i])), None)
        title = blocks[heading].strip()
        if not title.startswith("#"):  # what a loader left of a heading: shown as one
            title = f"#### {title}"
        return "\n\n".join([title, *blocks[heading + 1 : end]])
    if len("\n\n".join(blocks[: best + 1])) > PASSAGE_CHARS:
        # No heading before it and past the cut: from the paragraph itself, with the
        # term it describes when the paragraph before is one (an option's name, say).
        term = best > 0 and "\n" not in blocks[best - 1] and len(blocks[best - 1]) <= 80
        return "\n\n".join(blocks[best - 1 if term else best :])
    return text


def _is_heading(block: str) -> bool:
    """A Markdown heading, or what a loader left of one: a short line of a few words that
    starts with a capital and ends without a sentence's punctuation ("Rolling back")."""
    text = block.strip()
    if text.startswith("#"):
        return True
    return (
        "\n" not in text
        and 0 < len(text) <= 60
        and len(text.split()) <= 8
        and text[0].isupper()
        and not text.endswith((".", ":", ",", ";", "?", "!", "|"))
    )


def _balanced_fences(text: str, cut: bool) -> str:
    """An odd number of code fences: close the block the cut left open, or drop the tail
    of a block the passage started inside."""
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if _FENCE.match(line)]
    if len(fences) % 2 == 0:
        return text
    if cut:
        marker = _FENCE.match(lines[fences[-1]])
        return text.rstrip(" …") + "\n" + (marker.group(1) if marker else "```") + "\n…"
    rest = "\n".join(lines[fences[0] + 1 :]).strip()
    return rest or text


def mark_closest(text: str, question: str, embed: Embed) -> str:
    """`text` with its sentences most like `question` in bold (prose only: code, tables
    and headings are left as written). A sentence wrapped over lines is bold line by
    line, as Markdown's bold does not cross a line break."""
    sentences = _prose_sentences(text)
    if len(sentences) < 2:
        return text  # one sentence: bold would say nothing
    scores = _closeness(embed, question, [" ".join(text[a:b] for a, b in s) for s in sentences])
    best = max(scores)
    ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
    chosen = [i for i in ranked[:MARKED_MAX] if scores[i] >= best - MARKED_MARGIN]
    spans = sorted((span for i in chosen for span in sentences[i]), reverse=True)
    for a, b in spans:  # from the end: earlier offsets stay valid
        text = f"{text[:a]}**{text[a:b]}**{text[b:]}"
    return text


def _prose_sentences(text: str) -> list[list[tuple[int, int]]]:
    """Each prose sentence as its (start, end) pieces, one per line it runs over: outside
    code blocks, not in a heading, a table or a paragraph holding bold already."""
    sentences: list[list[tuple[int, int]]] = []
    offset = 0
    for block in _blocks(text):
        start, offset = offset, offset + len(block) + 2
        first = block.lstrip()
        if not first or first[0] in "#|>" or _FENCE.match(first) or " | " in block or "**" in block:
            continue
        # "\n" -> " " keeps every offset: sentences are found across the wrapping.
        flat = block.replace("\n", " ")
        at = 0
        for piece in _SENTENCE_START.split(flat):
            at = flat.index(piece, at)
            core = piece.rstrip(" …")
            if len(core.split()) >= 3:  # a fragment of two words says too little
                sentences.append(_line_pieces(block, start, at, at + len(core)))
            at += len(piece)
    return sentences


def _line_pieces(block: str, start: int, a: int, b: int) -> list[tuple[int, int]]:
    """Block offsets a..b as text offsets, split where the block breaks a line, each
    piece without its surrounding blanks or a list item's marker."""
    pieces = []
    line_start = 0
    for line in block.split("\n"):
        line_end = line_start + len(line)
        lo, hi = max(a, line_start), min(b, line_end)
        if lo < hi:
            segment = block[lo:hi]
            lead = len(segment) - len(segment.lstrip())
            if lo == line_start and (m := re.match(r"\s*([-*+]|\d{1,3}[.)]) ", segment)):
                lead = m.end()
            trail = len(segment) - len(segment.rstrip())
            if hi - trail > lo + lead:
                pieces.append((start + lo + lead, start + hi - trail))
        line_start = line_end + 1
    return pieces
