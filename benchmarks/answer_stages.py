"""Where one answer's time goes in the chat service: the first token, the tokens (the
service's rate against the engine's own on the same prompt), and the checks after the
last token, stage by stage, with every embedding call they make.

    DOCCHAT_DATA_DIR=DIR .venv/bin/python benchmarks/answer_stages.py \\
        --collection docs --question "How do I ...?" [--question ...] [--out FILE.json]

Greedy, one question at a time, the active model. A first answer warms the engine and
the embedder and is not counted. After each answer the engine alone writes as many
tokens from the same prompt, so the two decode rates come from the same minute (the
machine's speed drifts). The check stages are timed by wrapping the functions the
service calls (nothing else changes); set DOCCHAT_SECURITY__CANARY to compare two
checkouts on identical answers. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app.chat.service as service  # noqa: E402
from app.chat.events import Finished, Token  # noqa: E402
from app.chat.question import Question  # noqa: E402
from app.components import build_components  # noqa: E402
from app.settings import load_settings  # noqa: E402

STAGES: dict[str, list[float]] = {}
WARM_UP = "What is this documentation about?"


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (sync or async) with its seconds added to STAGES[name]."""
    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def waited(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                STAGES.setdefault(name, []).append(round(time.perf_counter() - began, 3))

        return waited

    @functools.wraps(function)
    def called(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            STAGES.setdefault(name, []).append(round(time.perf_counter() - began, 3))

    return called


async def through_service(chat: Any, question: str) -> tuple[Any, dict[str, Any]]:
    """The answer's prompt and its timeline through the chat service."""
    began = time.perf_counter()
    answer = await chat.open(Question(question, store=False))
    tokens: list[float] = []
    done: Finished | None = None
    async for event in answer.events():
        if isinstance(event, Token):
            tokens.append(time.perf_counter() - began)
        elif isinstance(event, Finished):
            done = event
    ended = time.perf_counter() - began
    if done is None or not tokens:
        raise RuntimeError(f"no answer to {question!r}")
    n = done.usage.completion_tokens
    return answer.prompt, {
        "completion_tokens": n,
        "finish_reason": done.finish_reason,
        "verdict": done.verdict,
        "first_token_s": round(tokens[0], 3),
        "last_token_s": round(tokens[-1], 3),
        "checks_s": round(ended - tokens[-1], 3),
        "total_s": round(ended, 3),
        "service_tokens_per_s": round((n - 1) / max(tokens[-1] - tokens[0], 1e-3), 1),
    }


async def engine_alone(engine: Any, prompt: Any, n: int) -> float:
    """The engine's own decode rate writing `n` tokens from `prompt`."""
    times: list[float] = []
    generation = engine.stream(prompt, max_tokens=n, temperature=0.0)
    async for _piece in generation:
        times.append(time.perf_counter())
    return round((len(times) - 1) / max(times[-1] - times[0], 1e-3), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", required=True)
    parser.add_argument("--question", action="append", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings(llm={"temperature": 0.0})
    base = build_components(settings, writer=False)
    vectors = settings.vectors.model_copy(update={"collection": args.collection})
    components = base.using(settings=settings.model_copy(update={"vectors": vectors}))
    chat = components.chat
    for name, stage in (
        ("check_answer", "check_answer"),
        ("with_self_check", "self_check"),
        ("closest_passage", "closest_passage"),
    ):  # the names the service module calls them by
        setattr(service, name, timed(stage, getattr(service, name)))
    leaks = chat.guard.leaks
    leaks.paraphrase = timed("paraphrase", leaks.paraphrase)  # type: ignore[method-assign]
    embedder = chat.retriever.embedder
    embed = embedder.embed
    calls: list[dict[str, Any]] = []

    def counted(texts: list[str]) -> list[list[float]]:
        began = time.perf_counter()
        try:
            return embed(texts)
        finally:
            calls.append(
                {
                    "texts": len(texts),
                    "chars": sum(map(len, texts)),
                    "s": round(time.perf_counter() - began, 3),
                }
            )

    embedder.embed = counted  # type: ignore[method-assign]
    rows = []
    try:
        base.warm()
        # Warm-up, not counted (another question: the engine would keep its cache).
        asyncio.run(through_service(chat, WARM_UP))
        for question in args.question:
            STAGES.clear()
            calls.clear()
            prompt, row = asyncio.run(through_service(chat, question))
            row["stages_s"] = {name: sum(times) for name, times in STAGES.items()}
            row["embed_calls"] = list(calls)
            row["engine_tokens_per_s"] = asyncio.run(
                engine_alone(chat.engine, prompt, row["completion_tokens"])
            )
            rows.append({"question": question, **row})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        base.close()
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
