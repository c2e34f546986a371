"""Base against base+adapter on a hand-written question set, from two `docchat eval
answers --json` reports, with the adapter's and the dataset's record; checks that no
question of the set is in the dataset (exactly or nearly: the closest pair is printed).

    DOCCHAT_DATA_DIR=/tmp/raft/data .venv/bin/python benchmarks/raft_compare.py \\
        --base base.json --adapter adapter.json --dataset docs-raft \\
        --adapter-name docs-raft-on-qwen --questions eval/docs_qa.jsonl \\
        --out benchmarks/raft_qwen_2core_shared.json

docs/finetune.md ("An adapter from the docs themselves") gives the whole recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.chat.passage import PASSAGE_INTROS  # noqa: E402
from app.curation import datasets  # noqa: E402
from app.releases.registry import Registry  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.store.db import open_database  # noqa: E402

SHARES = ("expected", "grounded", "cited", "false_refusals", "refused_out_of_scope")
KEPT = ("answer", "contains_expected", "refused", "grounded", "total_s")
TIMES = ("total_p50_s", "total_p95_s", "first_token_p50_s", "completion_tokens_mean")


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The summary of one report (without its per-question results)."""
    keys = ("model", "questions", "in_scope", "out_of_scope", "errors", *SHARES, *TIMES)
    summary = {k: report.get(k) for k in keys}
    results = report.get("results", [])
    times = [r["total_s"] for r in results]
    summary["total_mean_s"] = round(sum(times) / len(times), 2) if times else None
    # An answer the grounding check refused is replaced by the closest passage
    # (rag.ungrounded_action): its expected phrases are the docs', not the model's.
    inside = [r for r in results if not r["out_of_scope"]]
    replaced = [r for r in inside if r["answer"].startswith(PASSAGE_INTROS)]
    own = [r for r in inside if not r["answer"].startswith(PASSAGE_INTROS) and not r["refused"]]
    summary["in_scope_replaced_by_passage"] = len(replaced)
    summary["in_scope_own_answers"] = len(own)
    summary["expected_in_own_answers"] = sum(bool(r["contains_expected"]) for r in own)
    summary["expected_in_replacements"] = sum(bool(r["contains_expected"]) for r in replaced)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="eval answers JSON, base")
    parser.add_argument("--adapter", type=Path, required=True, help="the same, with adapter")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--adapter-name", required=True)
    parser.add_argument("--questions", type=Path, required=True, help="the set asked")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    settings = load_settings()
    db = open_database(settings)
    with db.session() as session:
        snapshot = datasets.load(session, settings.data_dir, args.dataset)
    adapter = Registry(db).adapter(args.adapter_name)
    db.close()

    asked = [json.loads(line)["question"] for line in args.questions.read_text().splitlines()]
    trained = [r["question"] for r in snapshot.rows]
    exact = sorted(set(asked) & set(trained))
    closest = max(
        ((q, *process.extractOne(q, trained, scorer=fuzz.ratio)[:2]) for q in asked),
        key=lambda found: found[2],
    )
    base = json.loads(args.base.read_text())
    ours = json.loads(args.adapter.read_text())
    result = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "questions_file": str(args.questions),
        "dataset": {**snapshot.info(), "path": Path(snapshot.path).name},
        "adapter": adapter.as_dict(),
        "overlap": {
            "exact": exact,
            "closest": {"asked": closest[0], "trained": closest[1], "ratio": closest[2]},
        },
        "base": figures(base),
        "with_adapter": figures(ours),
        "answers": [
            {
                "question": b["question"],
                "out_of_scope": b["out_of_scope"],
                "base": {k: b[k] for k in KEPT},
                "adapter": {k: a[k] for k in KEPT},
            }
            for b, a in zip(base["results"], ours["results"], strict=True)
        ],
    }
    print(f"# {result['machine']}, {result['cpus']} CPUs; {args.questions.name}")
    print(f"training data: {snapshot.n_train} train / {snapshot.n_held_out} held out")
    print(f"questions also in the training data: {len(exact)}; closest pair {closest[2]:.0f}:")
    print(f"  asked:   {closest[0]}\n  trained: {closest[1]}")
    print("| | " + " | ".join(SHARES + TIMES[:2]) + " | mean s |")
    print("|" + " --- |" * (len(SHARES) + 4))
    for name, data in (("base", result["base"]), ("with adapter", result["with_adapter"])):
        cells = [f"{data[k]:.2f}" for k in SHARES + TIMES[:2]] + [f"{data['total_mean_s']}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name, data in (("base", result["base"]), ("with adapter", result["with_adapter"])):
        print(
            f"{name}: of {data['in_scope']} in-scope answers, {data['in_scope_own_answers']} "
            f"the model's own ({data['expected_in_own_answers']} with an expected phrase), "
            f"{data['in_scope_replaced_by_passage']} replaced by a passage "
            f"({data['expected_in_replacements']} with one)"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
