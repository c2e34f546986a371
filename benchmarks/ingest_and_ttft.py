"""Benchmark: ingest throughput, the cost of an unchanged re-run, and the API's time to
first token against llama.cpp's own prompt evaluation of the same prompt.

Prints figures; asserts nothing. Targets (README "Benchmarks"): an unchanged re-run
under 5% of the first run; the API's time to first token within 15% of llama.cpp's
prompt evaluation.

    .venv/bin/python benchmarks/ingest_and_ttft.py [--docs /usr/share/doc/python3.11/html]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from app.components import Components, load_embedder, load_engine, open_database, open_vectors
from app.llm.embedder import Embedder
from app.main import create_app
from app.settings import Settings
from ingest.pipeline import Ingestor, IngestSummary

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")
QUESTION = "How do I pretty-print a dictionary as JSON with indentation?"


def ingest(settings: Settings, docs: Path, embedder: Embedder) -> IngestSummary:
    db = open_database(settings)
    vectors = open_vectors(settings, writer=True)
    try:
        ingestor = Ingestor.configured(settings.ingest, db, vectors, embedder)
        return ingestor.run([docs], settings.vectors.collection)
    finally:
        vectors.close()
        db.close()


def api_ttft(base: str, question: str) -> float:
    """Seconds from sending the request to the first answer token event."""
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"{base}/api/chat", json={"question": question}, timeout=300
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line == "event: token":
                first = time.perf_counter() - started
                break
        else:
            raise RuntimeError("no token event")
        for _ in response.iter_lines():
            pass  # let the answer finish so the next request finds the model idle
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--data-dir", type=Path, help="keep the stores here (default: temp)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not args.docs.is_dir():
        raise SystemExit(f"{args.docs} not found (apt-get install python3.11-doc)")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="docchat-bench-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        llm={"temperature": 0.0, "max_tokens": 8},
    )
    figures: dict[str, float | int | str] = {"docs": str(args.docs)}
    embedder = load_embedder(settings)

    first = ingest(settings, args.docs, embedder)
    second = ingest(settings, args.docs, embedder)
    files = first.new + first.changed + first.unchanged
    figures.update(
        files=files,
        failed=first.failed,
        chunks=first.chunks_written,
        first_run_s=round(first.seconds, 2),
        chunks_per_s=round(first.chunks_written / first.seconds, 1),
        unchanged_run_s=round(second.seconds, 2),
        unchanged_ratio=round(second.seconds / first.seconds, 4),
    )
    print(f"ingest: {files} files ({first.failed} failed), {first.chunks_written} chunks")
    print(f"  first run      {first.seconds:8.1f} s   {figures['chunks_per_s']} chunks/s")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(first.stages.items()))
    print(f"  stages: {stages}")
    figures.update({f"stage_{k}_s": round(v, 2) for k, v in first.stages.items()})
    print(
        f"  unchanged run  {second.seconds:8.2f} s   "
        f"{100 * second.seconds / first.seconds:.2f}% of the first (target < 5%)"
    )

    components = Components(
        settings,
        open_database(settings),
        open_vectors(settings, writer=False),
        embedder,
        load_engine(settings),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, components), host="127.0.0.1", port=0, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    import asyncio

    prepared = asyncio.run(components.answerer.prepare(args.question, []))
    if prepared.prompt is None:
        raise SystemExit("the question retrieved nothing; pick another")
    engine = components.engine
    api, native = [], []
    api_ttft(base, args.question)  # warm-up: first-call allocations
    for _ in range(args.repeats):
        # Both sides start from an empty KV cache, so neither reuses a cached prefix.
        engine.reset_cache()
        api.append(api_ttft(base, args.question))
        native.append(engine.prompt_eval_seconds(prepared.prompt))
    server.should_exit = True
    thread.join()
    api_s, native_s = statistics.median(api), statistics.median(native)
    figures.update(
        prompt_tokens=len(prepared.prompt.tokens),
        api_ttft_s=round(api_s, 3),
        llama_prompt_eval_s=round(native_s, 3),
        api_overhead=round(api_s / native_s - 1, 4),
    )
    overhead = 100 * (api_s / native_s - 1)
    tokens = len(prepared.prompt.tokens)
    print(f"time to first token, {tokens}-token prompt, median of {args.repeats}:")
    print(f"  llama.cpp prompt evaluation  {native_s:6.3f} s")
    print(f"  docchat API (HTTP, SSE)      {api_s:6.3f} s   (+{overhead:.1f}%, target < 15%)")
    components.close()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
