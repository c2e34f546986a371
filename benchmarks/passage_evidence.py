"""The passage shown in place of an unsupported answer, before and after (figures, not
pass/fail; no chat model is loaded).

    .venv/bin/python benchmarks/passage_evidence.py \\
        --set eval/docs_qa.jsonl:/tmp/pe/docs:docs \\
        --set eval/git_qa.jsonl:/tmp/pe/git:git --out benchmarks/passage_evidence.json

Each --set is QUESTIONS:DATA_DIR:COLLECTION, a data dir holding the collection ingested.
For every in-scope question with expected phrases, the retrieval the chat service runs
gives the passages, and the passage a user would be shown is built twice:

- before: docchat until now (the top passage from its first character, cut near 900);
- after: app/chat/passage.py (a readable start, the section closest to the question,
  reflowed prose, closed code blocks, the closest sentences in bold).

Per set: the share whose shown passage holds the expected phrases (as the answer
evaluation judges an answer; bold marks are taken out first), the share that starts
where a reader can, the mean length, and the milliseconds the "after" costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.chat.passage import PASSAGE_CHARS, closest_passage, opens  # noqa: E402
from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import contains_expected, read_cases  # noqa: E402
from app.llm.embedder import Embedder  # noqa: E402
from app.rag.retrieval import Retriever  # noqa: E402
from app.settings import RagSettings, Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.vectors import Hit, VectorStore  # noqa: E402


def passage_before(hits: list[Hit]) -> str:
    """The baseline: app/chat/service.py's closest_passage before this change."""
    text = hits[0].text.strip()
    if len(text) > PASSAGE_CHARS:
        cut = text[:PASSAGE_CHARS]
        end = max(cut.rfind("\n\n"), cut.rfind(". "))
        text = (cut[: end + 1] if end > PASSAGE_CHARS // 2 else cut).rstrip() + " …"
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    return f"intro ({hits[0].metadata.get('source', '')}):\n\n{quoted}\n\n[1]"


def body(shown: str) -> str:
    """The quoted passage without quote marks and bold markers."""
    inner = shown.split(":\n\n", 1)[1].rsplit("\n\n[1]", 1)[0]
    lines = [re.sub(r"^> ?", "", line) for line in inner.splitlines()]
    return "\n".join(lines).replace("**", "")


def run_set(spec: str, embedder: Embedder) -> dict[str, Any]:
    questions, data_dir, collection = spec.split(":")
    cases = [c for c in read_cases(Path(questions)) if not c.out_of_scope and c.has_expectations]
    data = Path(data_dir)
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    rows = []
    try:
        retriever = Retriever.configured(
            RagSettings(), embedder, vectors, db, collection, data_dir=data
        )
        for case in cases:
            hits = asyncio.run(retriever.relevant(case.question))
            if not hits:
                continue
            before = body(passage_before(hits))
            began = time.perf_counter()
            after = body(closest_passage(hits, case.question, embedder.embed))
            ms = (time.perf_counter() - began) * 1000
            rows.append(
                {
                    "question": case.question,
                    "before": bool(contains_expected(case, before)),
                    "after": bool(contains_expected(case, after)),
                    "before_clean_start": opens(before),
                    "after_clean_start": opens(after),
                    "before_chars": len(before),
                    "after_chars": len(after),
                    "ms": round(ms, 1),
                }
            )
    finally:
        vectors.close()
        db.close()
    n = max(1, len(rows))

    def share(key: str) -> float:
        return round(sum(r[key] for r in rows) / n, 3)

    summary = {
        "set": questions,
        "questions": len(rows),
        "expected_before": share("before"),
        "expected_after": share("after"),
        "gained": sum(1 for r in rows if r["after"] and not r["before"]),
        "lost": sum(1 for r in rows if r["before"] and not r["after"]),
        "clean_start_before": share("before_clean_start"),
        "clean_start_after": share("after_clean_start"),
        "chars_before": round(sum(r["before_chars"] for r in rows) / n),
        "chars_after": round(sum(r["after_chars"] for r in rows) / n),
        "ms_after_mean": round(sum(r["ms"] for r in rows) / n, 1),
    }
    print(json.dumps(summary), flush=True)
    return {**summary, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = load_embedder(Settings(_env_file=None), embedding_backend="auto")  # type: ignore[call-arg]
    sets = [run_set(spec, embedder) for spec in args.set]
    if args.out:
        report = {"machine": platform.machine(), "sets": sets}
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
