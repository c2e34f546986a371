"""llama.cpp's CPU variants: `make install` builds them all, docchat loads the best this
CPU runs, and a forced one is loaded or refused clearly. Each load runs in a process
of its own (a process holds one CPU backend)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.llm.cpu_backends import available
from app.llm.provision import small_chat_model

ROOT = Path(__file__).resolve().parents[2]
AVX512_VNNI = {"cascadelake", "icelake", "cooperlake", "zen4", "sapphirerapids"}
AVX2 = {"haswell", "alderlake"}


def run_engine(variant: str) -> dict[str, object]:
    """Load the small model with llm.cpu_variant=`variant` and answer one prompt."""
    code = f"""
import asyncio, json
from pathlib import Path
from app.llm.base import CannotChat
from app.llm.cpu_backends import loaded_variant
from app.llm.engine import LlamaEngine
from app.settings import LLMSettings
try:
    engine = LlamaEngine(LLMSettings(cpu_variant={variant!r}, max_tokens=8, parallel=1,
                                     n_ctx=512), Path({str(small_chat_model())!r}))
except CannotChat as exc:
    print(json.dumps({{"refused": str(exc)}}))
    raise SystemExit(0)
async def main():
    prompt = engine.format([{{"role": "user", "content": "Say hello."}}])
    return "".join([p async for p in engine.stream(prompt, max_tokens=8)])
text = asyncio.run(main())
print(json.dumps({{"variant": engine.cpu_variant, "mapped": loaded_variant(), "text": text}}))
engine.close()
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_the_build_holds_every_x86_cpu_variant() -> None:
    """What make install builds: from the baseline x86-64 to AVX-512 and AMX."""
    assert {"x64", "sse42", "haswell", "skylakex", "icelake", "zen4"} <= set(available())


def test_the_best_variant_this_cpu_runs_is_loaded_and_answers() -> None:
    result = run_engine("auto")
    assert result["variant"] == result["mapped"]  # what the process really runs
    assert result["text"]
    flags = cpu_flags()
    if {"avx512f", "avx512_vnni"} <= flags:
        assert result["variant"] in AVX512_VNNI  # not the AVX2 kernels the old build had
    elif "avx2" in flags:
        assert result["variant"] in AVX2 | {"skylakex", "cannonlake"}


def test_a_forced_variant_is_loaded_and_an_unknown_one_refused() -> None:
    forced = run_engine("haswell")
    assert (forced["variant"], forced["mapped"]) == ("haswell", "haswell")
    assert forced["text"]
    refused = run_engine("pentium2")
    assert "no such CPU variant" in str(refused["refused"])
    assert "zen4" in str(refused["refused"])  # the message lists what there is
