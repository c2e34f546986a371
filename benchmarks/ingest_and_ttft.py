"""Benchmark: ingest throughput, the cost of an unchanged re-run, and the API's time to
first token against llama.cpp's own prompt evaluation of the same prompt.

Prints figures; asserts nothing. Targets (docs/performance.md): an unchanged re-run
under 5% of the first run; the API's time to first token within 15% of llama.cpp's
prompt evaluation.

    .venv/bin/python benchmarks/ingest_and_ttft.py [--docs /usr/share/doc/python3.11/html]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.components import build_components, load_embedder, open_ingestor
from app.llm.embedder import Embedder
from app.llm.engine import Prompt
from app.main import create_app
from app.settings import Settings
from ingest.summary import IngestSummary

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")
QUESTION = "How do I pretty-print a dictionary as JSON with indentation?"


def ingest(settings: Settings, docs: Path, embedder: Embedder) -> IngestSummary:
    with open_ingestor(settings, embedder=embedder) as ingestor:
        return ingestor.run([docs], settings.vectors.collection)


def api_ttft(base: str, question: str) -> float:
    """Seconds from sending the request to the first answer token event."""
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"{base}/api/chat", json={"question": question}, timeout=300
    ) as response:
        response.raise_for_status()
        first = None
        # Read to the end, so the next request finds the model idle.
        for line in response.iter_lines():
            if first is None and line == "event: token":
                first = time.perf_counter() - started
        if first is None:
            raise RuntimeError("no token event")
    return first


def measure_ingest(args: argparse.Namespace, settings: Settings, figures: dict[str, Any]) -> None:
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
    figures.update({f"stage_{k}_s": round(v, 2) for k, v in first.stages.items()})
    print(f"ingest: {files} files ({first.failed} failed), {first.chunks_written} chunks")
    print(f"  first run      {first.seconds:8.1f} s   {figures['chunks_per_s']} chunks/s")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(first.stages.items()))
    print(f"  stages: {stages}")
    print(
        f"  unchanged run  {second.seconds:8.2f} s   "
        f"{100 * second.seconds / first.seconds:.2f}% of the first (target < 5%)"
    )


def measure_ttft(args: argparse.Namespace, settings: Settings, figures: dict[str, Any]) -> None:
    components = build_components(settings)
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
    chat, engine = components.chat, components.engine
    prompt = asyncio.run(chat.prompt_for(args.question))
    if prompt is None:
        raise SystemExit("the question retrieved nothing; pick another")
    prefix = chat.shared_prefix()
    api_cached, api_full, native = [], [], []
    api_ttft(base, args.question)  # warm-up: first-call allocations
    for _ in range(args.repeats):
        native.append(engine.prompt_eval_seconds(prompt))
        api_cached.append(api_ttft(base, args.question))
        engine.set_prefix(Prompt("", [], []))  # no cached system prompt: all evaluated
        api_full.append(api_ttft(base, args.question))
        engine.set_prefix(prefix)
    server.should_exit = True
    thread.join()
    components.close()
    native_s = statistics.median(native)
    full_s, cached_s = statistics.median(api_full), statistics.median(api_cached)
    tokens = len(prompt.tokens)
    figures.update(
        prompt_tokens=tokens,
        prefix_tokens=len(prefix.tokens),
        llama_prompt_eval_s=round(native_s, 3),
        api_ttft_full_s=round(full_s, 3),
        api_ttft_cached_prefix_s=round(cached_s, 3),
        api_overhead=round(full_s / native_s - 1, 4),
        prefix_cache_saving=round(1 - cached_s / full_s, 4),
    )
    print(f"time to first token, {tokens}-token prompt, median of {args.repeats}:")
    print(f"  llama.cpp prompt evaluation           {native_s:6.3f} s")
    print(
        f"  docchat API, whole prompt evaluated   {full_s:6.3f} s   "
        f"(+{100 * (full_s / native_s - 1):.1f}%, target < 15%)"
    )
    print(
        f"  docchat API, cached {len(prefix.tokens)}-token system prompt {cached_s:6.3f} s   "
        f"({100 * (1 - cached_s / full_s):.0f}% saved by the prefix cache)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--data-dir", type=Path, help="keep the stores here (default: temp)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-ingest", action="store_true", help="reuse --data-dir as it is")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not args.docs.is_dir():
        raise SystemExit(f"{args.docs} not found (apt-get install python3.11-doc)")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="docchat-bench-"))
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        llm={"temperature": 0.0, "max_tokens": 8},
    )
    figures: dict[str, Any] = {"docs": str(args.docs)}
    if not args.skip_ingest:
        measure_ingest(args, settings, figures)
    measure_ttft(args, settings, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
