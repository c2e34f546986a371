"""What a lower `llm.answer_tokens` would cut, read off stored greedy answers (no model run).

A greedy answer written under a lower cap is the stored answer's first tokens, so for
the answers the service showed as written (verdict grounded) this counts, per set and
cap, how many would be cut and how many of those would lose the case's expected phrase.
What it cannot say: the verdict of a cut answer (its checks see other text), and the
time (the whole-answer time of a cut answer is about its first token plus the cap at
the decode rate; `benchmarks/prompt_budget.py` measures it). Reads
benchmarks/weight_types_answers_2core.json's BF16 runs (the default budget, greedy):

    PYTHONPATH=. .venv/bin/python benchmarks/answer_cap.py \
        --model DATA_DIR/models/qwen2.5-coder-0.5b-instruct-bf16.gguf \
        --json benchmarks/answer_cap_offline.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.evaluation.cases import contains_expected, read_cases
from app.llm.cpu_backends import load_cpu_backend

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the GGUF (its tokenizer)")
    parser.add_argument(
        "--answers", type=Path, default=ROOT / "benchmarks/weight_types_answers_2core.json"
    )
    parser.add_argument("--run", default="bf16")
    parser.add_argument("--caps", default="384,320,256,192,160")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    load_cpu_backend()
    import llama_cpp

    vocab = llama_cpp.Llama(str(args.model), vocab_only=True, verbose=False)
    caps = [int(c) for c in args.caps.split(",")]
    figures: list[dict[str, Any]] = []
    for run in json.loads(args.answers.read_text())["runs"][args.run]:
        cases = {c.question: c for c in read_cases(ROOT / "eval" / run["set"])}
        rows = [r for r in run["results"] if not r["out_of_scope"]]
        written = [r for r in rows if r["verdict"] == "grounded"]
        slowest = sorted(run["results"], key=lambda r: -(r["total_s"] or 0))[:4]
        row: dict[str, Any] = {
            "set": run["set"],
            "in_scope": len(rows),
            "shown_as_written": len(written),
            "with_expected": sum(bool(r["contains_expected"]) for r in written),
            "total_p95_s": run["total_p95_s"],
            "slowest": [
                {
                    "total_s": round(r["total_s"], 1),
                    "completion_tokens": r["completion_tokens"],
                    "verdict": r["verdict"],
                }
                for r in slowest
            ],
        }
        for cap in caps:
            cut = lost = 0
            for r in written:
                tokens = vocab.tokenize(r["answer"].encode(), add_bos=False)
                if len(tokens) <= cap:
                    continue
                cut += 1
                start = vocab.detokenize(tokens[:cap]).decode(errors="ignore")
                lost += bool(r["contains_expected"]) and not contains_expected(
                    cases[r["question"]], start
                )
            row[f"cap_{cap}"] = {"cut": cut, "expected_lost": lost}
        figures.append(row)
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
