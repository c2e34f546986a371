"""Question sets for the evaluations: one JSONL file serves both the retrieval and the
answer evaluation.

    {"question": "...", "sources": ["security.md"], "expect_any": ["keys create"],
     "expect_all": ["--scope chat"], "out_of_scope": false}

`sources` are path suffixes of the files that answer it; `expect_any` holds phrases of
which a correct answer contains at least one, `expect_all` phrases it contains every
one of; an out-of-scope case (no sources) must be refused. eval/README.md has more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class QACase:
    """A question, the files that answer it, and what a correct answer contains."""

    question: str
    sources: tuple[str, ...] = ()
    expect_any: tuple[str, ...] = ()
    expect_all: tuple[str, ...] = ()
    out_of_scope: bool = False

    @property
    def has_expectations(self) -> bool:
        """Whether the answer's content can be judged (phrases were given)."""
        return bool(self.expect_any or self.expect_all)


def _strings(item: dict[str, Any], key: str) -> tuple[str, ...]:
    value = item.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key}: a list of strings")
    return tuple(value)


def read_cases(path: Path) -> list[QACase]:
    """The cases of a JSONL file; a line that is not a case is a clear error."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                raise ValueError("question: a string")
            case = QACase(
                item["question"],
                _strings(item, "sources"),
                _strings(item, "expect_any"),
                _strings(item, "expect_all"),
                bool(item.get("out_of_scope", False)),
            )
            if not case.out_of_scope and not case.sources:
                raise ValueError("sources: needed unless out_of_scope is true")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a question case ({exc})") from exc
        cases.append(case)
    if not cases:
        raise ValueError(f"{path}: no questions")
    return cases


def normalized(text: str) -> str:
    """Lower case, one space between words, typographic quotes and dashes made plain."""
    # Typographic quotes and dashes (written as escapes: they look like plain ones).
    plain = str.maketrans("\u2018\u2019\u201c\u201d\u2013\u2014`", "''\"\"--'")
    text = text.lower().translate(plain)
    return re.sub(r"\s+", " ", text).strip()


def contains_expected(case: QACase, answer: str) -> bool | None:
    """Whether the answer holds what the case expects (None: the case expects nothing)."""
    if not case.has_expectations:
        return None
    found = normalized(answer)
    any_ok = not case.expect_any or any(normalized(p) in found for p in case.expect_any)
    all_ok = all(normalized(p) in found for p in case.expect_all)
    return any_ok and all_ok


def source_matches(source: str, expected: tuple[str, ...]) -> bool:
    """A cited or retrieved file is relevant when its path ends with an expected one."""
    source = source.split("#", 1)[0]
    return any(source == e or source.endswith("/" + e.lstrip("/")) for e in expected)
