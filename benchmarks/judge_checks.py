"""The chat model as its own judge, and its token probabilities, against the hand labels.

    PYTHONPATH=. .venv/bin/python benchmarks/judge_checks.py [--model qwen] [--limit N] \
        [--out benchmarks/judge_checks.json]

For every labelled answer of eval/labels/ (right or wrong; partial and refused are left
out, as in answer_checks.py), the prompt the chat service gave the model is built again
(system prompt, the stored passages as numbered excerpts, the question) with the answer
after it, and evaluated once. From that one evaluation:

- the answer's own token probabilities: the mean and the lowest log-probability of its
  tokens, and the share of its tokens the model gave less than 0.5;
- the model asked, as the next user turn, a yes/no question about its answer: only the
  question's few tokens are new (the rest is in the cache, as it is in the engine right
  after an answer). The score is P(yes) / (P(yes) + P(no)) of the first token.

Each score is then turned into a check (flag when the score is below a bound) and the
bound is chosen on the dev half of the labels (the hash split of answer_checks.py),
then measured on the held-out half, alone and together with today's verdict.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from answer_checks import AFTER, Labelled, checks, read_labelled  # noqa: E402

from app.llm.cpu_backends import load_cpu_backend  # noqa: E402
from app.llm.provision import default_chat_model, small_chat_model  # noqa: E402
from app.rag.prompt import build_messages, system_prompt  # noqa: E402
from app.settings import load_settings  # noqa: E402

QUESTIONS = {
    "supported": (
        "Check your answer against the excerpts. Is everything it says stated in the "
        "excerpts, and does it answer my question? Reply with yes or no."
    ),
    "correct": "Is your answer correct according to the excerpts? Reply with yes or no.",
    "answered": ("Do the excerpts above answer my question directly? Reply with yes or no."),
}


def chatml(messages: list[dict[str, str]]) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def yes_share(logits: np.ndarray, yes: list[int], no: list[int]) -> float:
    top = float(logits.max())
    p_yes = sum(math.exp(float(logits[t]) - top) for t in yes)
    p_no = sum(math.exp(float(logits[t]) - top) for t in no)
    return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5


def log_softmax_at(row: np.ndarray, token: int) -> float:
    top = float(row.max())
    return float(row[token]) - top - math.log(float(np.exp(row - top).sum()))


def score_answers(
    rows: list[Labelled], model_path: Path, threads: int = 1
) -> dict[int, dict[str, float]]:
    from llama_cpp import Llama

    load_cpu_backend()
    llm = Llama(
        model_path=str(model_path),
        n_ctx=4096,
        n_threads=threads,  # 1 by default: on shared cores two threads wait on each other
        n_batch=512,
        logits_all=True,
        verbose=False,
    )
    tok = llm.tokenize

    def ids(words: list[str]) -> list[int]:
        out = []
        for w in words:
            t = tok(w.encode(), add_bos=False, special=False)
            if len(t) == 1:
                out.append(t[0])
        return sorted(set(out))

    yes, no = ids(["yes", "Yes", " yes", " Yes", "YES"]), ids(["no", "No", " no", " No", "NO"])
    system = system_prompt("0000")
    scores: dict[int, dict[str, float]] = {}
    for n, row in enumerate(rows, 1):
        began = time.perf_counter()
        messages = build_messages(system, row.question, row.hits, [])
        head = chatml(messages) + "<|im_start|>assistant\n"
        prompt = tok(head.encode(), add_bos=False, special=True)
        answer = tok(row.answer.encode(), add_bos=False, special=False)
        tail = tok(b"<|im_end|>\n", add_bos=False, special=True)
        base = prompt + answer + tail
        if len(base) > 3900:
            base = base[-3900:]
            prompt = prompt[len(prompt) + len(answer) + len(tail) - 3900 :]
        llm.reset()  # type: ignore[no-untyped-call]
        # Logits only where they are read (the answer's tokens and after): a row per
        # prompt token would cost more than evaluating the prompt.
        llm._logits_all = False
        llm.eval(base[: len(prompt) - 1])
        llm._logits_all = True
        llm.eval(base[len(prompt) - 1 :])
        logprobs = [
            log_softmax_at(llm.scores[len(prompt) + i - 1], t) for i, t in enumerate(answer)
        ]
        result: dict[str, float] = {}
        if logprobs:
            result["mean_logprob"] = sum(logprobs) / len(logprobs)
            result["min_logprob"] = min(logprobs)
            result["share_confident"] = sum(1 for p in logprobs if p > math.log(0.5)) / len(
                logprobs
            )
        first = time.perf_counter()
        for name, question in QUESTIONS.items():
            turn = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
            suffix = tok(turn.encode(), add_bos=False, special=True)
            llm.n_tokens = len(base)
            llm.eval(suffix)
            result[f"judge_{name}"] = yes_share(llm.scores[llm.n_tokens - 1], yes, no)
        result["seconds_answer_eval"] = first - began
        result["seconds_judges"] = (time.perf_counter() - first) / len(QUESTIONS)
        result["tokens"] = len(base)
        scores[id(row)] = result
        print(
            f"[{n}/{len(rows)}] {row.label:5} "
            + " ".join(f"{k}={v:.3f}" for k, v in result.items() if not k.startswith("sec"))
            + f" {time.perf_counter() - began:.1f}s",
            flush=True,
        )
    return scores


def rate(rows: list[Labelled], flags: dict[int, bool], label: str) -> tuple[int, int]:
    group = [r for r in rows if r.label == label]
    return sum(1 for r in group if flags[id(r)]), len(group)


def best_bound(rows: list[Labelled], values: dict[int, float], today: dict[int, bool]) -> float:
    """The bound that, with today's verdict, flags the most wrong answers while flagging
    at most one right answer in ten more than today's verdict does (dev half)."""
    right_today, n_right = rate(rows, today, "right")
    candidates = [*sorted({values[id(r)] for r in rows}), 1.01]
    best, best_wrong = 0.0, -1
    for bound in candidates:
        flags = {id(r): today[id(r)] or values[id(r)] < bound for r in rows}
        wrong, _ = rate(rows, flags, "wrong")
        right, _ = rate(rows, flags, "right")
        if right <= max(right_today, 0) + 0.1 * n_right and wrong > best_wrong:
            best, best_wrong = bound, wrong
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["qwen", "smollm2"], default="qwen")
    parser.add_argument("--answers-of", default="qwen0.5b", help="whose labelled answers")
    parser.add_argument("--labels", default="right,wrong", help="which labels to score")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--models-dir", type=Path, default=None, help="where the default model is (data dir's)"
    )
    parser.add_argument(
        "--model-file",
        type=Path,
        help="any ChatML GGUF file as judge (for example a candidate with no floor yet)",
    )
    parser.add_argument(
        "--skip",
        type=Path,
        action="append",
        default=[],
        help="a report of this script: its answers are not scored again (new labels only)",
    )
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    scored = {
        (item["set"], item["question"])
        for path in args.skip
        for item in json.loads(path.read_text(encoding="utf-8"))["answers"]
    }
    args.models_dir = args.models_dir or load_settings().data_dir / "models"
    rows = [
        r
        for r in read_labelled()
        if r.model == args.answers_of
        and r.label in args.labels.split(",")
        and r.answer.strip()
        and (r.set, r.question) not in scored
    ]
    if args.limit:
        rows = rows[: args.limit]
    path = args.model_file or (
        default_chat_model(args.models_dir) if args.model == "qwen" else small_chat_model()
    )
    scores = score_answers(rows, path, args.threads)
    after = checks()[AFTER]
    today = {id(r): after(r) for r in rows}
    report: dict[str, Any] = {"model": args.model, "answers_of": args.answers_of, "checks": {}}
    dev = [r for r in rows if r.half == "dev"]
    held = [r for r in rows if r.half == "held-out"]
    for name in scores[id(rows[0])]:
        if name.startswith("seconds") or name == "tokens":
            continue
        values = {id(r): scores[id(r)].get(name, 0.0) for r in rows}
        bound = best_bound(dev, values, today)
        line: dict[str, Any] = {"bound (dev)": bound}
        for half, group in (("dev", dev), ("held-out", held), ("all", rows)):
            alone = {id(r): values[id(r)] < bound for r in group}
            both = {id(r): today[id(r)] or values[id(r)] < bound for r in group}
            line[half] = {
                "alone wrong": rate(group, alone, "wrong"),
                "alone right": rate(group, alone, "right"),
                "with today wrong": rate(group, both, "wrong"),
                "with today right": rate(group, both, "right"),
            }
        wrong = [values[id(r)] for r in rows if r.label == "wrong"]
        right = [values[id(r)] for r in rows if r.label == "right"]
        # The chance a wrong answer scores below a right one (area under the curve).
        pairs = [(w < r) + 0.5 * (w == r) for w in wrong for r in right]
        line["auc"] = round(sum(pairs) / len(pairs), 3) if pairs else None
        report["checks"][name] = line
        print(name, json.dumps(line))
    report["today"] = {
        half: {"wrong": rate(g, today, "wrong"), "right": rate(g, today, "right")}
        for half, g in (("dev", dev), ("held-out", held), ("all", rows))
    }
    report["seconds_per_judge"] = sum(s["seconds_judges"] for s in scores.values()) / len(rows)
    report["answers"] = [
        {"set": r.set, "question": r.question, "label": r.label, "half": r.half, **scores[id(r)]}
        for r in rows
    ]
    print("today", json.dumps(report["today"]), "s/judge", report["seconds_per_judge"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
