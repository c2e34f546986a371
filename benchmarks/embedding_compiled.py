"""The embedding model compiled by PyTorch's inductor against the eager model, bf16.

Chunks the first N pages of a folder as an ingest does, embeds them with the configured
embedder (bf16 autocast where the CPU has it) eagerly, then with the model's transformer
replaced by `torch.compile(..., dynamic=True)` (optionally with inductor's weight
freezing and max-autotune), then eagerly again, in one process; prints the time of the
first compiled call (the compile), chunks/s of each later round and the lowest cosine
between the compiled and eager vectors. Measured 2026-12-07 and not taken
(docs/performance.md, "HTML pages in C"):

    PYTHONPATH=. .venv/bin/python benchmarks/embedding_compiled.py --limit 60 --freeze \
        --json benchmarks/embedding_compiled_2core.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from app.components import load_embedder
from app.settings import Settings
from ingest.chunking import embedding_text
from ingest.loaders import load_file
from ingest.pipeline import Ingestor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=Path("/usr/share/doc/postgresql-doc-15/html"))
    parser.add_argument("--limit", type=int, default=60, help="first N files")
    parser.add_argument("--freeze", action="store_true", help="inductor's weight freezing")
    parser.add_argument("--mode", default=None, help="torch.compile mode (max-autotune...)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = Settings()
    embedder = load_embedder(settings)
    ingestor = Ingestor.configured(settings.ingest, None, None, embedder)
    files = sorted(p for p in args.docs.rglob("*") if p.is_file())[: args.limit]
    texts: list[str] = []
    for path in files:
        doc = load_file(path, ingestor.limits)
        chunks = ingestor.chunker.chunk(doc)
        texts += [embedding_text(doc.title, c.section, c.text) for c in chunks]
    calls = [texts[i : i + 256] for i in range(0, len(texts), 256)]  # an ingest's calls

    def embed() -> tuple[float, np.ndarray]:
        began = time.perf_counter()
        vectors = np.concatenate([np.asarray(embedder.embed(call)) for call in calls])
        return time.perf_counter() - began, vectors

    figures: dict[str, object] = {
        "chunks": len(texts),
        "backend": embedder.identity.backend,
        "threads": torch.get_num_threads(),
        "freeze": args.freeze,
        "mode": args.mode,
    }
    embed()  # warm-up
    eager = [embed()[0] for _ in range(args.rounds)]
    _, reference = embed()
    import torch._inductor.config as inductor

    inductor.freezing = args.freeze
    # sentence-transformers' Transformer module; its .model is the Hugging Face model.
    module = embedder._model[0]
    eager_model = module.model
    began = time.perf_counter()
    module.model = torch.compile(eager_model, dynamic=True, mode=args.mode)
    embed()
    figures["first_compiled_call_s"] = round(time.perf_counter() - began, 1)
    compiled = []
    for _ in range(args.rounds):
        seconds, vectors = embed()
        compiled.append(seconds)
    figures["min_cosine"] = float(np.sum(reference * vectors, axis=1).min())
    module.model = eager_model
    eager_again = [embed()[0] for _ in range(args.rounds)]
    for name, rounds in (("eager", eager), ("compiled", compiled), ("eager_again", eager_again)):
        figures[name + "_chunks_per_s"] = [round(len(texts) / s, 1) for s in rounds]
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
