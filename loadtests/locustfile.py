"""A realistic mix of docchat traffic for locust.

Streaming chats (new questions and follow-ups, drawn from questions.txt), OpenAI-
compatible calls, ratings of answers (thumbs up or down, sometimes with a comment),
reads of past conversations, and health probes.
Streamed answers are read to the end here, because locust's own timing of a streamed
request stops at the headers; two metrics of our own are reported:
  - "time to first token" (request type SSE): from sending to the first token event;
  - "tokens per second" (request type RATE): the answer's decode speed, in the
    response-time column (a value, not milliseconds).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000
    DOCCHAT_API_KEY=dck_... locust -f loadtests/locustfile.py ...   (auth on)
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

QUESTIONS = [
    line.strip()
    for line in (Path(__file__).parent / "questions.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
FOLLOW_UPS = ["Can you say more about that?", "Where is that configured?", "And how do I undo it?"]
COMMENTS = ["Wrong version.", "The page it cites is outdated.", "Missing the config file name."]
# Most answers are never rated; of those that are, most are thumbs up.
RATE_SHARE = 0.5
UP_SHARE = 0.7
COMMENT_SHARE = 0.3


def fire(
    name: str, kind: str, value: float, length: int = 0, error: Exception | None = None
) -> None:
    """Report one of our own measurements as a locust request."""
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=value,
        response_length=length,
        exception=error,
        context={},
    )


class DocchatUser(HttpUser):
    """One person using the chat page, or a tool using the API."""

    wait_time = between(1, 4)

    def on_start(self) -> None:
        key = os.environ.get("DOCCHAT_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.conversation: str | None = None
        self.unrated: str | None = None  # message id of the last answer, until rated

    def _stream_chat(self, question: str, name: str) -> None:
        body: dict[str, Any] = {"question": question}
        if self.conversation:
            body["conversation_id"] = self.conversation
        started = time.perf_counter()
        first: float | None = None
        tokens = 0
        done: dict[str, Any] | None = None
        event = ""
        with self.client.post(
            "/api/chat",
            json=body,
            headers=self.headers,
            stream=True,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            for raw in response.iter_lines():
                line = raw.decode() if isinstance(raw, bytes) else raw
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "token":
                    tokens += 1
                    if first is None:
                        first = time.perf_counter()
                elif line.startswith("data:") and event == "done":
                    done = json.loads(line[5:])
                elif line.startswith("data:") and event == "error":
                    response.failure(line[5:].strip())
                    return
            if done is None:
                response.failure("stream ended without a done event")
                return
            response.success()
        ended = time.perf_counter()
        self.conversation = done["conversation_id"]
        self.unrated = done["message_id"]
        if first is not None:
            fire("time to first token", "SSE", (first - started) * 1000)
            # A "not covered" notice is not generated: it would inflate the rate.
            if done["answered_from_docs"] and tokens > 1 and ended > first:
                fire("tokens per second", "RATE", (tokens - 1) / (ended - first))

    @task(6)
    def new_question(self) -> None:
        self.conversation = None
        self._stream_chat(random.choice(QUESTIONS), "/api/chat (new)")

    @task(2)
    def follow_up(self) -> None:
        if self.conversation is None:
            return self.new_question()
        self._stream_chat(random.choice(FOLLOW_UPS), "/api/chat (follow-up)")
        return None

    @task(2)
    def openai_completion(self) -> None:
        body = {
            "model": "docchat",
            "messages": [{"role": "user", "content": random.choice(QUESTIONS)}],
            "max_tokens": 64,
        }
        with self.client.post(
            "/v1/chat/completions", json=body, headers=self.headers, catch_response=True
        ) as response:
            if response.status_code == 200 and response.json()["choices"][0]["message"]["content"]:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

    @task(2)
    def rate_answer(self) -> None:
        # The thumbs under an answer: about one answer in eight gets rated.
        if self.unrated is None or random.random() > RATE_SHARE:
            return
        body: dict[str, Any] = {"rating": "up" if random.random() < UP_SHARE else "down"}
        if random.random() < COMMENT_SHARE:
            body["comment"] = random.choice(COMMENTS)
        self.client.post(
            f"/api/messages/{self.unrated}/feedback",
            json=body,
            headers=self.headers,
            name="/api/messages/{id}/feedback",
        )
        self.unrated = None

    @task(1)
    def read_conversation(self) -> None:
        # A person returns to an answer (the page reloads it).
        if self.conversation:
            self.client.get(
                f"/api/conversations/{self.conversation}",
                headers=self.headers,
                name="/api/conversations/{id}",
            )

    @task(2)
    def health(self) -> None:
        self.client.get("/healthz")
