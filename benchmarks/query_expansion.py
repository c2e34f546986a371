"""Query expansion by the chat model: does it carry paraphrased questions to the answer?
(figures, not pass/fail; measured in docs/retrieval.md, not adopted).

    .venv/bin/python benchmarks/query_expansion.py --model QWEN.gguf \\
        --set eval/git_qa.jsonl:/tmp/rt/git:git --set eval/docs_qa.jsonl:/tmp/ev:docs

For every in-scope question the chat model writes, greedily, one line of the words the
documentation would use for the answer (the command, option, setting or term). Each
way of searching then goes through docchat's default retrieval (hybrid for names,
assembly within rag.context_tokens):

- question: the question as asked (docchat's default);
- question + expansion: both texts as one query;
- expansion: the model's line alone;
- fused: the question's ranking and the expansion's ranking, reciprocal-rank fused.

Reported per set and way: chunk recall@5 and MRR@5 (a chunk of an expected page among
the first five), the share whose expected phrases reach the prompt's excerpts, the
excerpts' mean size, and the seconds the expansion took per question.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import contains_expected, read_cases, source_matches  # noqa: E402
from app.llm.engine import LlamaEngine  # noqa: E402
from app.rag.followup import first_line  # noqa: E402
from app.rag.prompt import excerpt_block  # noqa: E402
from app.rag.retrieval import Retriever, fuse  # noqa: E402
from app.settings import RagSettings, Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.vectors import Hit, VectorStore  # noqa: E402

INSTRUCTION = (
    "You help search a product's documentation. For the user's question, write the "
    "words the documentation would use for the answer: the command, option, setting, "
    "function or term, and a few words about it. Write one short line only."
)
WAYS = ("question", "question + expansion", "expansion", "fused")


async def expand(engine: LlamaEngine, question: str) -> str:
    """The model's one line of documentation words for the question."""
    messages = [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": question},
    ]
    return await first_line(engine, messages, max_tokens=40)


def searcher(retriever: Retriever, way: str) -> Callable[[str, str], list[Hit]]:
    """The ranked hits (the assembler's pool) for one way of searching."""

    def search(question: str, expansion: str) -> list[Hit]:
        pool = retriever.pool
        if way == "question":
            return retriever.search_sync(question, pool)
        if way == "question + expansion":
            return retriever.search_sync(f"{question}\n{expansion}", pool)
        if way == "expansion":
            return retriever.search_sync(expansion or question, pool)
        asked = retriever.search_sync(question, pool)
        expanded = retriever.search_sync(expansion or question, pool)
        by_id = {h.id: h for h in expanded} | {h.id: h for h in asked}
        order = fuse([[h.id for h in asked], [h.id for h in expanded]])
        return [by_id[i] for i in order]

    return search


def run_set(spec: str, engine: LlamaEngine, embedder: Any) -> dict[str, Any]:
    questions, data_dir, collection = spec.split(":")
    cases = [c for c in read_cases(Path(questions)) if not c.out_of_scope]
    data = Path(data_dir)
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    retriever = Retriever.configured(
        RagSettings(), embedder, vectors, db, collection, data_dir=data
    )
    assert retriever.assembler is not None
    totals = {way: {"found": 0.0, "mrr": 0.0, "in_prompt": 0.0, "chars": 0.0} for way in WAYS}
    rows = []
    seconds = 0.0
    try:
        for case in cases:
            began = time.perf_counter()
            expansion = asyncio.run(expand(engine, case.question))
            seconds += time.perf_counter() - began
            row: dict[str, Any] = {"question": case.question, "expansion": expansion}
            for way in WAYS:
                found = searcher(retriever, way)(case.question, expansion)
                sources = [str(h.metadata.get("source", "")) for h in found[:5]]
                rank = next(
                    (i for i, s in enumerate(sources, 1) if source_matches(s, case.sources)), None
                )
                hits = [h for h in found if h.score >= retriever.min_score]
                block = excerpt_block(retriever.assembler.assemble(hits) if hits else [])
                hit = bool(contains_expected(case, block))
                total = totals[way]
                total["found"] += bool(rank)
                total["mrr"] += 1 / rank if rank else 0.0
                total["in_prompt"] += hit
                total["chars"] += len(block)
                row[way] = hit
            rows.append(row)
    finally:
        vectors.close()
        db.close()
    n = len(cases) or 1
    figures = {
        way: {
            "chunk_recall_at_5": round(t["found"] / n, 3),
            "chunk_mrr_at_5": round(t["mrr"] / n, 3),
            "answer_in_prompt": round(t["in_prompt"] / n, 3),
            "context_chars_mean": round(t["chars"] / n),
        }
        for way, t in totals.items()
    }
    for way, f in figures.items():
        print(
            f"{Path(questions).name:18} {way:22} {f['chunk_recall_at_5']:.3f} "
            f"{f['chunk_mrr_at_5']:.3f} {f['answer_in_prompt']:.3f} {f['context_chars_mean']:6d}",
            flush=True,
        )
    return {
        "set": questions,
        "collection": collection,
        "questions": len(cases),
        "expansion_seconds_mean": round(seconds / n, 2),
        "results": figures,
        "per_question": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], help="QUESTIONS:DATA_DIR:NAME")
    parser.add_argument("--model", type=Path, required=True, help="chat model (GGUF)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = Settings(_env_file=None, llm={"n_ctx": 2048, "temperature": 0.0})
    embedder = load_embedder(settings)
    engine = LlamaEngine(settings.llm, args.model)
    print(f"{'set':18} {'way':22} rec@5  mrr@5 prompt  chars", flush=True)
    try:
        sets = [run_set(spec, engine, embedder) for spec in args.set]
    finally:
        engine.close()
    if args.out:
        payload = {"model": args.model.name, "instruction": INSTRUCTION, "sets": sets}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
