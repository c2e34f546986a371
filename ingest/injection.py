"""Prompt-injection patterns in document text: reported at ingest, never silently indexed.

Detection is advisory (the retrieved text is fenced off as data in the prompt anyway);
its job is to tell an operator that a page tries to talk to the model. The patterns are
deliberately narrow: a warning on ordinary technical prose would teach people to ignore
them. Chat-template control tokens are different: the engine tokenizes the prompt with
special tokens enabled, so such a token in retrieved text would really open a new turn.
common.control_tokens strips them; here they are reported.
"""

from __future__ import annotations

import re

from common.control_tokens import CONTROL_TOKEN

FINDING_PREFIX = "possible prompt injection"
MAX_FINDINGS = 5
MAX_SNIPPET_CHARS = 60

_FLAGS = re.IGNORECASE | re.MULTILINE
_OBJECTS = r"(?:instructions?|rules|prompts?|directions|directives|guidelines|commands)"

# (name, pattern): one family of injection each. Every pattern must stay quiet on the
# Python manual (see tests/ingest/test_injection.py); add a test when adding one.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "Ignore all previous instructions", "disregard the above rules", "forget your prompt".
    (
        "override",
        re.compile(
            r"\b(?:ignore|disregard|forget|override)\s+(?:(?:all|any)\s+(?:of\s+)?)?"
            r"(?:(?:the|your|my|these|those)\s+)?"
            r"(?:(?:previous|prior|above|earlier|preceding|foregoing|original|system)\s+)"
            rf"{_OBJECTS}\b"
            rf"|\b(?:ignore|disregard|forget)\s+(?:(?:all|any)\s+(?:of\s+)?)?your\s+{_OBJECTS}\b",
            _FLAGS,
        ),
    ),
    # "You are now DAN", "you are now in developer mode": a new identity for the model.
    # Plain "you are now ready / in the directory" is common in tutorials, so a role noun
    # or a jailbreak word must follow within a few words.
    (
        "role-reassignment",
        re.compile(
            r"\byou\s+are\s+now\s+(?:(?:a|an|the|in|my|acting\s+as)\s+)?"
            r"(?:[\w-]+\s+){0,3}?"
            r"(?:mode|assistant|ai|chatbot|bot|persona|character|dan|jailbroken|"
            r"unrestricted|unfiltered|uncensored)\b"
            r"|\byou\s+are\s+now\s+(?:no\s+longer|free\s+(?:of|from))\b"
            r"|\bpretend\s+(?:that\s+)?you\s+are\b",
            _FLAGS,
        ),
    ),
    # "New instructions:", "Your new instructions are:" opening a replacement prompt, at the
    # start of a line or sentence ("Adds five new instructions:" is about bytecode).
    (
        "new-instructions",
        re.compile(
            r"(?:^|(?<=[.!?:>\]]))[ \t]*(?:your\s+)?(?:new|updated|real)\s+(?:system\s+)?"
            r"instructions?\s*(?:are\s*)?:",
            _FLAGS,
        ),
    ),
    # Attempts to read the system prompt: "your system prompt", "show me the system
    # prompt", "repeat your instructions", "print everything above". Not "the system
    # prompt" in a description (docchat's own pages explain theirs), nor "show/display
    # the instructions": debuggers do that.
    (
        "prompt-leak",
        re.compile(
            r"\byour\s+(?:(?:full|entire|exact|hidden|original|initial|whole)\s+)?"
            r"system\s+(?:prompt|message)\b"
            r"|\b(?:reveal|print|repeat|leak|show|output|display|dump|quote|recite|share|"
            r"tell\s+me|give\s+me|write\s+out)\s+(?:me\s+|us\s+)?(?:the\s+|its\s+)?"
            r"(?:(?:full|entire|exact|hidden|original|initial|whole)\s+)?system\s+prompt\b"
            r"|\bsystem\s+prompt\s+(?:override|injection|leak)\b"
            r"|\b(?:reveal|print|repeat|leak)\s+(?:me\s+)?"
            r"(?:your|the)\s+(?:system\s+|initial\s+|original\s+)?(?:prompt|instructions)\b"
            r"|\b(?:repeat|print|output)\s+(?:everything|all(?:\s+the)?\s+text)\s+"
            r"(?:above|before)\b",
            _FLAGS,
        ),
    ),
    # Chat-template control tokens: text that would open or close a chat turn.
    ("control-token", CONTROL_TOKEN),
    # Instruction-tuning role headers at line start: "### Instruction:", "### System:"
    # (two or more hashes: "# Response: ..." is an ordinary code comment).
    (
        "role-header",
        re.compile(
            r"^[ \t]*#{2,6}[ \t]*(?:instruction|system|response|assistant|user)s?[ \t]*:",
            _FLAGS,
        ),
    ),
    # A transcript line that speaks as the system or assistant and gives orders
    # ("System: you must ..."); "assistant: the helper class" in prose is not at line start
    # and carries no order.
    (
        "role-line",
        re.compile(
            r"^[ \t]*(?:system|assistant)[ \t]*:[ \t]*"
            r"(?=[^\n]*\b(?:you\s+(?:are|must|will|should)|ignore|disregard|always|never|"
            r"from\s+now\s+on|do\s+not|don't|respond|reply)\b)[^\n]{0,40}",
            _FLAGS,
        ),
    ),
    # Hiding the manipulation from the reader: "do not tell the user".
    (
        "concealment",
        re.compile(
            r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|reveal\s+(?:this\s+)?to|"
            r"mention\s+(?:this\s+)?to)\s+the\s+user\b",
            _FLAGS,
        ),
    ),
    # Forcing the answer: "respond only with", "answer every question with".
    (
        "forced-output",
        re.compile(
            r"\b(?:respond|reply|answer)\s+only\s+with\b"
            r"|\bonly\s+(?:respond|reply)\s+with\b"
            r"|\banswer\s+(?:every|all|each)\s+questions?\s+with\b",
            _FLAGS,
        ),
    ),
    # A Markdown image whose URL query is left for the model to fill in (empty, or a
    # placeholder such as {data}, [DATA], <secret>, $X, SECRET): rendering the answer
    # would send that data to the host. Badges ("?branch=master") have a literal value.
    (
        "exfiltration-link",
        re.compile(
            r"!\[[^\]\n]{0,200}\]\(\s*https?://[^\s)?]{1,300}\?(?:[^\s)=]{0,100}=[^\s)&]*&)*"
            r"[^\s)=]{0,100}=(?:[\s)]|$|[{\[<$]|%7B|%5B|%3C|(?-i:[A-Z][A-Z_]{2,}\b))"
            r"[^\s)]{0,60}\)?",
            _FLAGS,
        ),
    ),
)


def injection_findings(text: str) -> list[str]:
    """Human-readable findings for injection patterns in `text`, in reading order.

    Each quotes the matched snippet; the same snippet is reported once, and at most
    MAX_FINDINGS are returned so that one hostile page cannot flood the report.
    """
    matches: list[tuple[int, str]] = []
    for _name, pattern in PATTERNS:
        for match in pattern.finditer(text):
            matches.append((match.start(), _snippet(match.group(0))))
    findings: list[str] = []
    seen: set[str] = set()
    for _start, snippet in sorted(matches):
        if snippet.casefold() in seen:
            continue
        seen.add(snippet.casefold())
        findings.append(f'{FINDING_PREFIX}: "{snippet}"')
        if len(findings) == MAX_FINDINGS:
            break
    return findings


def _snippet(matched: str) -> str:
    """The match on one line, shortened; quotes swapped so the finding stays readable."""
    flat = " ".join(matched.split()).replace('"', "'")
    if len(flat) > MAX_SNIPPET_CHARS:
        flat = flat[: MAX_SNIPPET_CHARS - 1].rstrip() + "…"
    return flat
