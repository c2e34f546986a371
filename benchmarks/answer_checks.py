"""How well answer checks tell wrong answers from right ones, against the hand labels.

    .venv/bin/python benchmarks/answer_checks.py [--out benchmarks/answer_checks.json]

Reads every eval/labels/<set>.<model>.jsonl (question, answer, label, reason) with the
answers file of the same name in eval/answers/ (the passages the prompt held, the
service's verdict), runs each check on the labelled answers again, and prints, per
check, the share of wrong answers it flags and of right answers it flags: over all
labels, per set and model, and on the two halves of the labels (a fixed split by the
question's hash: "dev", what a check may be tuned on, and "held-out", what it may not),
with the time each check took per answer on this machine.

Labels: right, wrong, partial (a right answer with a wrong or invented detail),
refused (the model declined) and, out of scope, wrong (it answered a question the docs
do not cover) or refused. Refusals are not answers and are left out of the shares.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.chat.passage import closest_passage  # noqa: E402
from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import QACase, contains_expected  # noqa: E402
from app.llm.embedder import Embedder  # noqa: E402
from app.rag.grounding import content_words, grounding_score, restates_question  # noqa: E402
from app.rag.terms import unpaired_terms  # noqa: E402
from app.settings import RagSettings, load_settings  # noqa: E402
from app.store.vectors import Hit  # noqa: E402

LABELS = ROOT / "eval" / "labels"
ANSWERS = ROOT / "eval" / "answers"


def half(question: str) -> str:
    """dev (where checks may be tuned) or held-out (only measured), fixed by the
    question's text, the same for every model and benchmark."""
    return "dev" if hashlib.sha256(question.encode()).digest()[0] % 2 == 0 else "held-out"


@dataclass
class Labelled:
    """One labelled answer with what its prompt held."""

    set: str
    model: str
    question: str
    answer: str
    label: str
    reason: str
    out_of_scope: bool
    score: float | None  # the grounding score when the answer was made
    hits: list[Hit]
    stored: dict[str, Any]  # the row of eval/answers/ (shown, shown_expected, seconds...)

    @property
    def half(self) -> str:
        return half(self.question)


def read_labelled() -> list[Labelled]:
    """Every labelled answer, joined with its stored passages."""
    rows = []
    for path in sorted(LABELS.glob("*.jsonl")):
        name = path.name.removesuffix(".jsonl")
        set_name, _, model = name.partition(".")
        stored = {}
        for line in (ANSWERS / path.name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            stored[item["question"]] = item
        for line in path.read_text(encoding="utf-8").splitlines():
            label = json.loads(line)
            item = stored[label["question"]]
            hits = [
                Hit(str(n), p["text"], p["score"], {"source": p["source"]})
                for n, p in enumerate(item.get("passages", []))
            ]
            rows.append(
                Labelled(
                    set_name,
                    model,
                    label["question"],
                    item.get("answer", ""),
                    label["label"],
                    label.get("reason", ""),
                    bool(item.get("out_of_scope")),
                    item.get("grounding_score"),
                    hits,
                    item,
                )
            )
    return rows


def says_nothing_new(question: str, answer: str, least: int) -> bool:
    """Whether the answer adds fewer than `least` content words to the question (words
    compared by their first five letters; yes/no and "documentation" add nothing): a
    small model often hands the question back ("Yes, you can run it on Postgres")."""
    asked = {w[:5] for w in content_words(question)}
    empty = {"yes", "no", "not", "documentation", "docs", "question", "answer"}
    new = {w for w in content_words(answer) - empty if w[:5] not in asked}
    return len(new) < least


def today_flags(row: Labelled) -> bool:
    """Today's verdict: ungrounded below rag.grounding_threshold's default."""
    threshold = RagSettings.model_fields["grounding_threshold"].default
    return row.score is None or row.score < threshold


# The verdict the service gave (rag.check_terms on): today's score and the terms; and
# with the model's confidence (rag.min_confidence, measured when --confidence is given).
AFTER = "today + terms paired (0.5)"
WITH_MODEL = "today + terms paired (0.5) + self-check (kept)"
# What is served since 2026-12-07: the above and the model's confidence floor.
SERVED = "today + terms paired (0.5) + self-check + confidence floor (kept)"
# And, since it came in, an answer that only restates the question (rag.check_restated).
RESTATED = SERVED.replace(" (kept)", "") + " + restates (kept)"

# A check: True when it flags the answer (judges it unsupported).
Check = Callable[[Labelled], bool]


# What the chat model said of each labelled answer (benchmarks/judge_checks.py, which
# evaluates the answer's prompt with the model that wrote it): (set, model, question) ->
# its scores (mean_logprob, judge_supported, ...); the catalog entry of each model.
SCORES: dict[tuple[str, str, str], dict[str, float]] = {}
CATALOG_NAMES = {
    "qwen0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m",
    "smollm2-135m": "smollm2-135m-instruct-q4_1",
}


def read_scores(paths: list[Path]) -> None:
    """Fill SCORES from judge_checks.py's reports."""
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        for item in report["answers"]:
            SCORES[(item["set"], report["answers_of"], item["question"])] = item


def scored_below(score: str, bound: float | None) -> Check:
    """Flags an answer whose model score is below `bound` (never where either is
    unknown). `confidence` is exp(mean log-probability)."""

    def check(row: Labelled) -> bool:
        item = SCORES.get((row.set, row.model, row.question))
        if item is None or bound is None:
            return False
        if score == "confidence":
            return math.exp(item["mean_logprob"]) < bound
        return item[score] < bound

    return check


def floor_of(row: Labelled, attribute: str) -> float | None:
    from app.llm.catalog import CATALOG

    name = CATALOG_NAMES.get(row.model)
    return getattr(CATALOG[name], attribute) if name else None


def model_floor(score: str, attribute: str) -> Check:
    """The score against the catalog's floor for the model that wrote the answer."""
    return lambda row: scored_below(score, floor_of(row, attribute))(row)


def checks() -> dict[str, Check]:
    """The checks measured, by name: each alone, then together."""

    def today(row: Labelled) -> bool:
        # The score the service gave when the answer was made (the same function on the
        # same text and passages) against today's threshold; its cost is measured on its
        # own, see `cost`. (Not the stored verdict: answers made since rag.check_terms
        # came in carry the new verdict.)
        return today_flags(row)

    def texts(row: Labelled) -> list[str]:
        return [h.text for h in row.hits]

    def paired(least: float) -> Check:
        return lambda row: bool(unpaired_terms(row.question, row.answer, texts(row), least))

    def echo(least: int) -> Check:
        return lambda row: says_nothing_new(row.question, row.answer, least)

    def top_score(below: float) -> Check:
        return lambda row: not row.hits or max(h.score for h in row.hits) < below

    named: dict[str, Check] = {
        "grounding (today)": today,
        "terms in the passages": paired(0.0),
        "terms paired (0.4)": paired(0.4),
        "terms paired (0.5)": paired(0.5),
        "terms paired (0.6)": paired(0.6),
        "echo (adds no word)": echo(1),
        "echo (adds < 2 words)": echo(2),
        "echo (adds < 3 words)": echo(3),
    }
    for below in (0.4, 0.45, 0.5):
        named[f"top passage score < {below}"] = top_score(below)
    echo2 = echo(2)
    named["today + echo (< 2)"] = lambda r: today(r) or echo2(r)
    pair5, echo1 = paired(0.5), echo(1)
    present = paired(0.0)
    named["today + terms in the passages"] = lambda r: today(r) or present(r)
    named["today + terms paired (0.5)"] = lambda r: today(r) or pair5(r)
    named["today + terms paired (0.5) + echo (no word)"] = lambda r: (
        today(r) or pair5(r) or echo1(r)
    )
    named["today + terms paired (0.5) + echo (< 2)"] = lambda r: today(r) or pair5(r) or echo2(r)
    if SCORES:
        # Bounds chosen on the dev half alone (benchmarks/judge_checks.py).
        for bound in (0.55, 0.59, 0.65):
            named[f"confidence < {bound}"] = scored_below("confidence", bound)
        for score in ("judge_supported", "judge_correct", "judge_answered"):
            named[f"self-check {score} < 0.46"] = scored_below(score, 0.46)
        confident = scored_below("confidence", 0.59)
        named["today + terms paired (0.5) + confidence < 0.59"] = lambda r: (
            today(r) or pair5(r) or confident(r)
        )
        kept = model_floor("judge_supported", "self_check_floor")
        named[WITH_MODEL] = lambda r: today(r) or pair5(r) or kept(r)
        floor = model_floor("confidence", "confidence_floor")
        with_model = named[WITH_MODEL]
        named[SERVED] = lambda r: with_model(r) or floor(r)
        served = named[SERVED]
        named[RESTATED] = lambda r: served(r) or restates_question(r.question, r.answer)
    return named


def shares(rows: list[Labelled], flags: dict[int, bool]) -> dict[str, Any]:
    """Wrong, partial and right answers flagged, with their counts."""
    out: dict[str, Any] = {}
    for label in ("wrong", "partial", "right"):
        group = [r for r in rows if r.label == label]
        flagged = sum(1 for r in group if flags[id(r)])
        out[label] = {"n": len(group), "flagged": flagged}
        out[f"{label}_flagged"] = round(flagged / len(group), 3) if group else None
    answers = [r for r in rows if r.label in ("wrong", "partial", "right")]
    unflagged_wrong = sum(1 for r in answers if r.label == "wrong" and not flags[id(r)])
    out["wrong_unflagged_of_answers"] = (
        round(unflagged_wrong / len(answers), 3) if answers else None
    )
    return out


def measure(rows: list[Labelled], named: dict[str, Check]) -> dict[str, Any]:
    """Every check over every answer: the flags, the shares by group, the time."""
    answers = [r for r in rows if r.label in ("wrong", "partial", "right")]
    results: dict[str, Any] = {}
    for name, check in named.items():
        started = time.perf_counter()
        flags = {id(r): check(r) for r in answers}
        ms = 1000 * (time.perf_counter() - started) / max(1, len(answers))
        groups: dict[str, list[Labelled]] = {"all": answers, "in scope": []}
        for r in answers:
            if not r.out_of_scope:
                groups["in scope"].append(r)
            groups.setdefault(f"{r.set} / {r.model}", []).append(r)
            groups.setdefault(r.half, []).append(r)
        results[name] = {"ms_per_answer": round(ms, 1)} | {
            group: shares(members, flags) for group, members in groups.items()
        }
    return results


def before_after(rows: list[Labelled], flags: Check, embedder: Embedder) -> dict[str, Any]:
    """Per set and model, what the user is shown before (today's verdict, as stored) and
    after (an answer the new check flags gives way to the closest passage, as
    rag.ungrounded_action=passages does): in-scope answers whose shown text holds the
    expected phrase, wrong answers shown without a flag (of all in-scope questions
    labelled), and the seconds an answer took."""
    out: dict[str, Any] = {}
    groups: dict[str, list[Labelled]] = {}
    for r in rows:
        groups.setdefault(f"{r.set} / {r.model}", []).append(r)
    for name, members in sorted(groups.items()):
        inside = [r for r in members if not r.out_of_scope]
        judged = [r for r in inside if r.stored.get("shown_expected") is not None]
        before = sum(1 for r in judged if r.stored["shown_expected"])
        after = 0
        for r in judged:
            newly = r.label != "refused" and not today_flags(r) and flags(r)
            if not newly:
                after += bool(r.stored["shown_expected"])
                continue
            case = QACase(
                r.question, (), tuple(r.stored["expect_any"]), tuple(r.stored["expect_all"])
            )
            shown = closest_passage(r.hits, r.question, embedder.embed)
            after += bool(contains_expected(case, shown))
        wrong = [r for r in inside if r.label == "wrong"]
        out[name] = {
            "in_scope": len(inside),
            "expected_shown_before": round(before / len(judged), 3) if judged else None,
            "expected_shown_after": round(after / len(judged), 3) if judged else None,
            "wrong_unflagged_before": round(
                sum(1 for r in wrong if not today_flags(r)) / len(inside), 3
            )
            if inside
            else None,
            "wrong_unflagged_after": round(
                sum(1 for r in wrong if not today_flags(r) and not flags(r)) / len(inside),
                3,
            )
            if inside
            else None,
            "seconds_mean": round(
                sum(r.stored.get("seconds", 0.0) for r in members) / len(members), 1
            ),
        }
    return out


def cost(rows: list[Labelled], embedder: Embedder, n: int = 20) -> float:
    """Milliseconds per answer of today's grounding score, recomputed on `n` answers."""
    sample = [r for r in rows if r.label in ("wrong", "partial", "right")][:n]
    started = time.perf_counter()
    for row in sample:
        grounding_score(row.answer, row.hits, embedder.embed)
    return round(1000 * (time.perf_counter() - started) / max(1, len(sample)), 1)


def print_results(results: dict[str, Any]) -> None:
    for name, figures in results.items():
        print(f"\n## {name} ({figures['ms_per_answer']} ms per answer)")
        print("| group | wrong flagged | right flagged | partial flagged | wrong shown unflagged |")
        print("| --- | --- | --- | --- | --- |")
        for group, s in figures.items():
            if group == "ms_per_answer":
                continue
            print(
                f"| {group} | {s['wrong']['flagged']}/{s['wrong']['n']} ({s['wrong_flagged']}) | "
                f"{s['right']['flagged']}/{s['right']['n']} ({s['right_flagged']}) | "
                f"{s['partial']['flagged']}/{s['partial']['n']} ({s['partial_flagged']}) | "
                f"{s['wrong_unflagged_of_answers']} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "answer_checks.json")
    parser.add_argument("--check", action="append", help="Only these checks (by name).")
    parser.add_argument(
        "--scores",
        type=Path,
        action="append",
        default=[],
        help="judge_checks.py reports: add the model's own checks (before/after with them)",
    )
    args = parser.parse_args()
    read_scores(args.scores)
    settings = load_settings()
    embedder = load_embedder(settings)
    rows = read_labelled()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.label] = counts.get(r.label, 0) + 1
    print(f"# {len(rows)} labelled answers: {counts}")
    named = checks()
    if args.check:
        named = {k: v for k, v in named.items() if k in args.check}
    results = measure(rows, named)
    results["grounding (today)"]["ms_per_answer"] = cost(rows, embedder)
    print_results(results)
    after = next((name for name in (RESTATED, SERVED, WITH_MODEL) if name in named), AFTER)
    sets = before_after(rows, named[after], embedder)
    print(f"\n## before / after ({after})")
    print("| set / model | in scope | expected shown | wrong shown unflagged | s per answer |")
    print("| --- | --- | --- | --- | --- |")
    for name, f in sets.items():
        print(
            f"| {name} | {f['in_scope']} | {f['expected_shown_before']} / "
            f"{f['expected_shown_after']} | {f['wrong_unflagged_before']} / "
            f"{f['wrong_unflagged_after']} | {f['seconds_mean']} |"
        )
    args.out.write_text(
        json.dumps(
            {"labels": counts, "checks": results, "before_after": sets},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
