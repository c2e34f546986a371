"""What reaches the prompt: retrieval and context assembly, before and after, on question
sets over ingested manuals (figures, not pass/fail; no chat model is loaded).

    .venv/bin/python benchmarks/retrieval_context.py \\
        --set eval/python311_qa.jsonl:/tmp/rt/py:python311 \\
        --set eval/git_qa.jsonl:/tmp/rt/git:git --out benchmarks/retrieval_context.json

Each --set is QUESTIONS:DATA_DIR:COLLECTION: a data dir that holds the collection
already ingested (`DOCCHAT_DATA_DIR=DIR docchat ingest ... --collection NAME`); it is
opened as a reader. For every configuration (search, passages, budget) and question:

- chunk recall@5 and MRR@5: a chunk of an expected page among the first five chunks of
  the ranking, and the reciprocal rank of the first such chunk;
- in prompt: the question's expected phrases (any of `expect_any`, all of `expect_all`,
  matched as the answer evaluation matches them) occur in the excerpts the prompt gets;
  "from its page": in an excerpt of an expected page;
- context characters: the excerpt block as the prompt carries it (numbers, sources and
  fences included), mean and largest.

"before" is docchat until now: vector search, the top_k=4 chunks as found.

    --followups eval/git_followups.jsonl:/tmp/rt/git:git [--model PATH.gguf]

measures follow-up questions (each with the question before it) under rag.followups
off, rules and (with --model) model: the share whose expected phrases reach the prompt
with the default retrieval (hybrid, assembly), and what the model rewrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.components import load_embedder  # noqa: E402
from app.evaluation.cases import QACase, contains_expected, read_cases, source_matches  # noqa: E402
from app.llm.embedder import Embedder  # noqa: E402
from app.rag.prompt import excerpt_block  # noqa: E402
from app.rag.retrieval import Retriever  # noqa: E402
from app.settings import RagSettings, Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.vectors import VectorStore  # noqa: E402


@dataclass(frozen=True)
class Config:
    """One way of filling the prompt."""

    name: str
    retrieval: str
    top_k: int
    context_tokens: int
    lexical_weight: float = 0.0  # for questions in plain words; names always fuse at 1.0


CONFIGS = [
    Config("before: vector, 4 chunks", "vector", 4, 0),
    Config("vector + assembly 1200", "vector", 4, 1200),
    Config("hybrid, 4 chunks", "hybrid", 4, 0, 1.0),
    Config("hybrid + assembly 1200", "hybrid", 4, 1200, 1.0),
    Config("hybrid + assembly 1200, 6 passages", "hybrid", 6, 1200, 1.0),
    Config("hybrid + assembly 1500, 6 passages", "hybrid", 6, 1500, 1.0),
    Config("hybrid for names, 4 chunks", "hybrid", 4, 0),
    Config("hybrid for names + assembly 1200 (default)", "hybrid", 4, 1200),
    Config("hybrid for names + assembly 1500, 6 passages", "hybrid", 6, 1500),
]


def remember(embedder: Embedder) -> None:
    """Embed each text once: every configuration asks the same questions."""
    embed = embedder.embed
    seen: dict[str, list[float]] = {}

    def cached(texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in seen]
        if missing:
            seen.update(zip(missing, embed(missing), strict=True))
        return [seen[t] for t in texts]

    embedder.embed = cached  # type: ignore[method-assign]


def measure(
    retriever: Retriever, cases: list[QACase], rankings: dict[str, list[str]] | None
) -> dict[str, Any]:
    """The figures of one configuration over the in-scope cases."""
    judged = [c for c in cases if not c.out_of_scope]
    found = mrr = in_prompt = from_page = 0.0
    chars: list[int] = []
    misses = []
    for case in judged:
        sources = [
            str(h.metadata.get("source", "")) for h in retriever.search_sync(case.question, 5)
        ]
        rank = next((i for i, s in enumerate(sources, 1) if source_matches(s, case.sources)), None)
        if rank:
            found += 1
            mrr += 1 / rank
        passages = asyncio.run(retriever.context(case.question))
        block = excerpt_block(passages)
        chars.append(len(block))
        hit = bool(contains_expected(case, block))
        in_prompt += hit
        from_page += any(
            contains_expected(case, p.text)
            and source_matches(str(p.metadata.get("source", "")), case.sources)
            for p in passages
        )
        if not hit:
            misses.append(case.question)
    n = len(judged) or 1
    return {
        "questions": len(judged),
        "chunk_recall_at_5": round(found / n, 3),
        "chunk_mrr_at_5": round(mrr / n, 3),
        "answer_in_prompt": round(in_prompt / n, 3),
        "answer_in_prompt_from_its_page": round(from_page / n, 3),
        "context_chars_mean": round(sum(chars) / n),
        "context_chars_max": max(chars or [0]),
        "misses": misses,
    }


def run_set(spec: str, embedder: Embedder, configs: list[Config]) -> dict[str, Any]:
    questions, data_dir, collection = spec.split(":")
    cases = read_cases(Path(questions))
    data = Path(data_dir)
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    results = {}
    try:
        for config in configs:
            rag = RagSettings(
                retrieval=config.retrieval,  # type: ignore[arg-type]
                top_k=config.top_k,
                context_tokens=config.context_tokens,
                lexical_weight=config.lexical_weight,
            )
            retriever = Retriever.configured(rag, embedder, vectors, db, collection, data_dir=data)
            began = time.perf_counter()
            results[config.name] = measure(retriever, cases, None)
            results[config.name]["seconds"] = round(time.perf_counter() - began, 1)
            row = results[config.name]
            print(
                f"{Path(questions).name:22} {config.name:46} "
                f"{row['chunk_recall_at_5']:.3f} {row['chunk_mrr_at_5']:.3f} "
                f"{row['answer_in_prompt']:.3f} {row['answer_in_prompt_from_its_page']:.3f} "
                f"{row['context_chars_mean']:6d} {row['context_chars_max']:6d}",
                flush=True,
            )
    finally:
        vectors.close()
        db.close()
    return {"set": questions, "collection": collection, "results": results}


def run_followups(spec: str, embedder: Embedder, model: Path | None) -> dict[str, Any]:
    """Follow-ups searched as asked, by rules, and rewritten by the chat model."""
    from app.rag.followup import standalone_by_model, standalone_by_rules

    questions, data_dir, collection = spec.split(":")
    cases = [json.loads(line) for line in Path(questions).read_text().splitlines() if line]
    data = Path(data_dir)
    db = Database(f"sqlite:///{data / 'docchat.db'}")
    vectors = VectorStore(url=None, path=data / "chroma", writer=False)
    engine = None
    if model is not None:
        from app.llm.engine import LlamaEngine

        llm = Settings(_env_file=None, llm={"n_ctx": 2048, "temperature": 0.0}).llm  # type: ignore[call-arg]
        engine = LlamaEngine(llm, model)
    retriever = Retriever.configured(
        RagSettings(), embedder, vectors, db, collection, data_dir=data
    )
    modes = ["off", "rules"] + (["model"] if engine else [])
    results: dict[str, Any] = {}
    try:
        for mode in modes:
            hits = 0
            rewrites = []
            seconds = 0.0
            for case in cases:
                began = time.perf_counter()
                if mode == "off":
                    query = case["question"]
                elif mode == "rules":
                    query = standalone_by_rules(case["question"], case["previous"])
                else:
                    assert engine is not None
                    query = asyncio.run(
                        standalone_by_model(engine, case["question"], case["previous"])
                    )
                seconds += time.perf_counter() - began
                passages = asyncio.run(retriever.context(query, case["previous"]))
                qa = QACase(
                    question=query,
                    sources=tuple(case["sources"]),
                    expect_any=tuple(case["expect_any"]),
                )
                ok = bool(contains_expected(qa, excerpt_block(passages)))
                hits += ok
                rewrites.append({"question": case["question"], "query": query, "in_prompt": ok})
            results[mode] = {
                "answer_in_prompt": round(hits / len(cases), 3),
                "rewrite_seconds_mean": round(seconds / len(cases), 2),
                "queries": rewrites,
            }
            print(f"follow-ups {mode:6} {hits}/{len(cases)} in prompt", flush=True)
    finally:
        if engine is not None:
            engine.close()
        vectors.close()
        db.close()
    return {"set": questions, "collection": collection, "results": results}


def table(sets: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| set | configuration | chunk recall@5 | chunk MRR@5 | answer in prompt | "
        "from its page | context chars (mean / max) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for found in sets:
        for name, row in found["results"].items():
            lines.append(
                f"| {Path(found['set']).name} ({row['questions']}) | {name} | "
                f"{row['chunk_recall_at_5']:.3f} | {row['chunk_mrr_at_5']:.3f} | "
                f"{row['answer_in_prompt']:.3f} | {row['answer_in_prompt_from_its_page']:.3f} | "
                f"{row['context_chars_mean']:,} / {row['context_chars_max']:,} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], help="QUESTIONS:DATA_DIR:NAME")
    parser.add_argument("--config", action="append", help="only the configurations named")
    parser.add_argument("--followups", help="FOLLOWUPS:DATA_DIR:NAME")
    parser.add_argument("--model", type=Path, help="chat model (GGUF) for rewriting follow-ups")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    configs = [c for c in CONFIGS if not args.config or c.name in args.config]
    # auto: each collection in the variant it was built with (fp32, int8)
    embedder = load_embedder(Settings(_env_file=None), embedding_backend="auto")  # type: ignore[call-arg]
    remember(embedder)
    print(f"{'set':22} {'configuration':46} rec@5  mrr@5 prompt  page  chars   max", flush=True)
    sets = [run_set(spec, embedder, configs) for spec in args.set]
    print()
    print(table(sets))
    followups = run_followups(args.followups, embedder, args.model) if args.followups else None
    if args.out:
        payload = {
            "machine": platform.machine(),
            "embedder": embedder.name,
            "sets": sets,
            "followups": followups,
        }
        args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
