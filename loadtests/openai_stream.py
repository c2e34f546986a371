"""One locust load for any OpenAI-compatible server: streamed completions, so docchat and
llama-cpp-python's own server (the peer) can be measured under the same load
(benchmarks/peer_server.py runs it against both).

Each user sends one body after another from a JSON file (a list of request bodies),
reads the stream to the end, and reports two metrics of its own, as the main
locustfile does: "time to first token" (type SSE, ms) and "tokens per second"
(type RATE, a value in the response-time column; one content piece = one token).

    LOAD_PATH=/v1/chat/completions LOAD_BODIES=bodies.json \
      locust -f loadtests/openai_stream.py --headless -u 4 -r 4 -t 60s --host http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

PATH = os.environ.get("LOAD_PATH", "/v1/chat/completions")
BODIES: list[dict[str, Any]] = (
    json.loads(Path(os.environ["LOAD_BODIES"]).read_text())
    if os.environ.get("LOAD_BODIES")
    else [{"model": "docchat", "messages": [{"role": "user", "content": "Hello"}]}]
)


def fire(name: str, kind: str, value: float) -> None:
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=value,
        response_length=0,
        exception=None,
        context={},
    )


class StreamingCompletionUser(HttpUser):
    """A tool calling the completions API with streaming on, with a short think time."""

    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        key = os.environ.get("LOAD_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    @task
    def completion(self) -> None:
        body = {**random.choice(BODIES), "stream": True}
        started = time.perf_counter()
        first: float | None = None
        pieces = 0
        with self.client.post(
            PATH, json=body, headers=self.headers, stream=True, catch_response=True, name=PATH
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            finished = False
            for raw in response.iter_lines():
                line = raw.decode() if isinstance(raw, bytes) else raw
                if line.strip() == "data: [DONE]":
                    finished = True
                    break
                if not line.startswith("data: {"):
                    continue
                choice = (json.loads(line[6:]).get("choices") or [{}])[0]
                if choice.get("text") or (choice.get("delta") or {}).get("content"):
                    pieces += 1
                    first = first or time.perf_counter()
            if not finished:
                response.failure("stream ended without [DONE]")
                return
            response.success()
        ended = time.perf_counter()
        if first is not None:
            fire("time to first token", "SSE", (first - started) * 1000)
            if pieces > 1 and ended > first:
                fire("tokens per second", "RATE", (pieces - 1) / (ended - first))
