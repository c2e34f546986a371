"""Benchmark: docchat's OpenAI-compatible endpoint against llama-cpp-python's own server
(`python -m llama_cpp.server`, the peer a user would otherwise pick), same model file,
same threads, same prompts: first 1/2/4/8 concurrent streaming clients of this script's
own (aggregate tokens/s, median time to first token), then the same locust load on each
(loadtests/openai_stream.py: N users streaming completions for a fixed time; TTFT p50/p95,
tokens/s per answer, answers per minute, failures). Prints figures; asserts nothing.

docchat answers with retrieval; the peer gets the exact messages docchat built for
the same questions (system prompt, excerpts, question), so both evaluate the same
prompts. Needs a data folder with the fixture corpus ingested (made here).

    .venv/bin/pip install -e '.[bench]'    # the peer server's own dependencies
    .venv/bin/python benchmarks/peer_server.py [--tokens 64] [--locust-users 4 --locust-seconds 90]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.llm.provision import small_chat_model

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What port does the widget server listen on by default?",
    "When do backups run?",
    "Which endpoint creates a widget?",
    "What does error code E42 mean?",
    "Where are the logs written?",
    "How long are backups kept?",
    "What is the API rate limit?",
    "How do I start the widget server?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} never answered")


async def stream(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> tuple[float, int]:
    """Time to the first content piece, and pieces, of one streamed OpenAI call."""
    started = time.perf_counter()
    first = None
    tokens = 0
    async with client.stream("POST", path, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            piece = choices[0].get("text") or choices[0].get("delta", {}).get("content")
            if piece:
                tokens += 1
                first = first or time.perf_counter() - started
    return first or 0.0, tokens


async def level(
    base: str, path: str, bodies: list[dict[str, Any]], users: int
) -> tuple[float, float]:
    """Aggregate tokens/s and median TTFT with `users` clients sending all bodies."""
    queue = list(bodies)
    results: list[tuple[float, int]] = []

    async def user(client: httpx.AsyncClient) -> None:
        while queue:
            results.append(await stream(client, path, queue.pop()))

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        await asyncio.gather(*(user(client) for _ in range(users)))
    seconds = time.perf_counter() - started
    return sum(t for _, t in results) / seconds, statistics.median(f for f, _ in results)


def locust_run(
    base: str, path: str, bodies: list[dict[str, Any]], users: int, seconds: int, work: Path
) -> dict[str, float]:
    """The same locust load against one server; figures read from locust's CSV."""
    (work / "bodies.json").write_text(json.dumps(bodies))
    prefix = work / f"locust_{free_port()}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "loadtests" / "openai_stream.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--host",
            base,
            "--csv",
            str(prefix),
            "--only-summary",
        ],
        env={**os.environ, "LOAD_PATH": path, "LOAD_BODIES": str(work / "bodies.json")},
        capture_output=True,
        check=False,
    )
    with open(f"{prefix}_stats.csv", newline="") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    answers, ttft, rate = rows[path], rows["time to first token"], rows["tokens per second"]
    return {
        "answers_per_min": int(answers["Request Count"]) * 60 / seconds,
        "failures": int(answers["Failure Count"]),
        "ttft_p50_s": float(ttft["50%"]) / 1000,
        "ttft_p95_s": float(ttft["95%"]) / 1000,
        "tokens_per_s_per_answer": float(rate["Average Response Time"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--locust-users", type=int, default=4, help="0: no locust run")
    parser.add_argument("--locust-seconds", type=int, default=90)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="docchat-peer-"))
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(work / "data"),
        "DOCCHAT_LLM__N_THREADS": "2",
        "DOCCHAT_LLM__PARALLEL": "8",
        "DOCCHAT_LLM__MAX_TOKENS": str(args.tokens),
        "DOCCHAT_LOGGING__LEVEL": "WARNING",
        "DOCCHAT_SECRETS_DIR": str(work / "none"),
    }
    shutil.copytree(ROOT / "tests" / "fixtures" / "corpus", work / "corpus")
    subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(work / "corpus")],
        env=env,
        capture_output=True,
        check=False,
    )
    # The exact messages docchat sends the model, for the peer.
    script = (
        "import asyncio, json, sys\n"
        "from app.settings import load_settings\n"
        "from app.components import build_components\n"
        "c = build_components(load_settings(), writer=False)\n"
        "out = []\n"
        "for q in json.loads(sys.argv[1]):\n"
        "    out.append(asyncio.run(c.chat.prompt_for(q)).text)\n"
        "c.close()\n"
        "print(json.dumps(out))\n"
    )
    prompts = json.loads(
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(QUESTIONS)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    servers = {}
    port = free_port()
    servers["docchat"] = (
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        f"http://127.0.0.1:{port}",
    )
    wait(servers["docchat"][1] + "/readyz", servers["docchat"][0])
    figures: dict[str, dict[int, tuple[float, float]]] = {}
    docchat_bodies = [
        {
            "model": "docchat",
            "stream": True,
            "max_tokens": args.tokens,
            "temperature": 0.8,
            "messages": [{"role": "user", "content": q}],
        }
        for q in QUESTIONS
    ]
    figures["docchat"] = {
        u: asyncio.run(level(servers["docchat"][1], "/v1/chat/completions", docchat_bodies, u))
        for u in (1, 2, 4, 8)
    }
    loads: dict[str, dict[str, float]] = {}
    if args.locust_users:
        loads["docchat"] = locust_run(
            servers["docchat"][1],
            "/v1/chat/completions",
            docchat_bodies,
            args.locust_users,
            args.locust_seconds,
            work,
        )
    servers["docchat"][0].terminate()
    servers["docchat"][0].wait()
    port = free_port()
    peer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.llm.llama_server",  # llama_cpp.server with the CPU kernels loaded
            "--model",
            str(small_chat_model()),
            "--n_threads",
            "2",
            "--n_threads_batch",
            "2",
            "--n_ctx",
            "4096",
            "--port",
            str(port),
            "--interrupt_requests",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait(base + "/v1/models", peer)
    # The prompt docchat built, already templated: sent through /v1/completions, since
    # a chat call would wrap it in the template a second time.
    peer_bodies = [
        {"prompt": p, "stream": True, "max_tokens": args.tokens, "temperature": 0.8}
        for p in prompts
    ]

    figures["llama_cpp.server"] = {
        u: asyncio.run(level(base, "/v1/completions", peer_bodies, u)) for u in (1, 2, 4, 8)
    }
    if args.locust_users:
        loads["llama_cpp.server"] = locust_run(
            base, "/v1/completions", peer_bodies, args.locust_users, args.locust_seconds, work
        )
    peer.terminate()
    peer.wait()
    shutil.rmtree(work, ignore_errors=True)
    for name, rows in figures.items():
        one_rate = rows[1][0]
        for users, (rate, ttft) in rows.items():
            print(
                f"{name:17} {users} client(s): {rate:6.1f} tokens/s ({rate / one_rate:.2f}x), "
                f"median TTFT {ttft:5.2f} s"
            )
    for name, load in loads.items():
        print(
            f"{name:17} locust {args.locust_users} users {args.locust_seconds} s: "
            f"{load['answers_per_min']:.1f} answers/min, TTFT p50 {load['ttft_p50_s']:.2f} s "
            f"p95 {load['ttft_p95_s']:.2f} s, {load['tokens_per_s_per_answer']:.1f} tokens/s "
            f"per answer, {load['failures']} failures"
        )


if __name__ == "__main__":
    main()
