"""How well the grounding check agrees with the hand labels of a question set.

A set may carry answers labelled by hand (eval/README.md): `labels/<set>.<model>.jsonl`
beside the set file (question, answer, label: right, partial, wrong or refused) with
`answers/<set>.<model>.jsonl` (the passages each answer's prompt held). The check as
configured now is run again on every labelled right or wrong answer with its own
passages (the self-check too, where the model in service has a floor: the prompt is
evaluated whole for each answer, seconds apiece on a CPU), and the shares it flags
(judges ungrounded) are reported: of wrong answers (more is better) and of right ones
(fewer is better). Partial answers and refusals are left out, as
benchmarks/answer_checks.py leaves them. The promotion gate compares the two with the
model in service's, so a release whose check got worse is refused.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.chat.self_check import self_check_floor
from app.chat.service import ChatService
from app.rag.prompt import build_messages
from app.store.vectors import Hit


@dataclass(frozen=True)
class Labelled:
    """One labelled answer and the passages its prompt held."""

    question: str
    answer: str
    label: str  # right or wrong
    hits: list[Hit]


def label_files(qa_file: Path) -> list[Path]:
    """The label files of a set: labels/<set stem>.*.jsonl beside it."""
    folder = qa_file.parent / "labels"
    return sorted(folder.glob(f"{qa_file.stem}.*.jsonl")) if folder.is_dir() else []


def read_labels(qa_file: Path) -> list[Labelled]:
    """Every right or wrong labelled answer of a set, with its stored passages (an
    answer whose passages are not stored is left out: it cannot be judged again)."""
    rows = []
    for path in label_files(qa_file):
        answers = qa_file.parent / "answers" / path.name
        if not answers.is_file():
            continue
        stored: dict[str, dict[str, Any]] = {}
        for line in answers.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                stored[item["question"]] = item
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            label = json.loads(line)
            item = stored.get(label["question"])
            if label.get("label") not in ("right", "wrong") or item is None:
                continue
            hits = [
                Hit(str(n), p["text"], float(p["score"]), {"source": p["source"]})
                for n, p in enumerate(item.get("passages", []))
            ]
            rows.append(Labelled(label["question"], label["answer"], label["label"], hits))
    return rows


async def label_agreement(chat: ChatService, qa_file: Path) -> dict[str, Any] | None:
    """The shares of labelled wrong and right answers the check flags (None: the set
    carries no labels)."""
    rows = read_labels(qa_file)
    if not rows:
        return None
    flagged = {"wrong": 0, "right": 0}
    counts = {"wrong": 0, "right": 0}
    engine = chat.engine.pin()
    asking = self_check_floor(chat.rag.self_check, engine.model_sha256) is not None
    asked = 0
    for row in rows:
        counts[row.label] += 1
        if not row.hits:
            flagged[row.label] += 1  # nothing to answer from: refused, so flagged
            continue
        # The model in service is asked of the labelled answer as after its own, given
        # the prompt (evaluated whole here: no answer's cache holds it); formatting it
        # is spared where no floor would ask.
        prompt = None
        if asking:
            messages = build_messages(chat.system, row.question, row.hits, [])
            prompt = await asyncio.to_thread(engine.format, messages)
        # The verdict alone: the sentence support does not change it.
        checks = await chat.check_grounding(
            row.answer, row.hits, row.question, False, engine=engine, prompt=prompt
        )
        asked += checks.self_check is not None
        flagged[row.label] += not checks.grounded

    def share(label: str) -> float | None:
        return round(flagged[label] / counts[label], 4) if counts[label] else None

    return {
        "labelled": len(rows),
        "labels_wrong_flagged": share("wrong"),
        "labels_right_flagged": share("right"),
        "labels_self_checked": asked,  # answers the model in service was asked about
    }
