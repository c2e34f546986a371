"""tests/needs.py: a missing part skips a test locally and fails it where CI is set, at
module level (peft, Chromium) as inside a test (promtool, the manual).

Before it, `importorskip("peft")`, the Chromium module skip and the promtool, amtool and
manual skips skipped under CI too, so a CI machine without them passed having run none
of those areas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKS = (
    """
from pathlib import Path

from tests.needs import need_module, need_path, need_tool

need_module("no_such_module_docchat", "module level")


def test_never_runs() -> None:
    pass
""",
    """
from pathlib import Path

from tests.needs import need_path, need_tool


def test_tool() -> None:
    need_tool("no-such-tool-docchat", "inside a test")


def test_path() -> None:
    need_path(Path("/no/such/manual"), "inside a test")
""",
)


def run_pytest(tmp_path: Path, source: str, ci: bool) -> str:
    test = tmp_path / "test_missing_part.py"
    test.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci:
        env["CI"] = "true"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("source", CHECKS, ids=["module level", "inside a test"])
def test_missing_parts_skip_locally_and_fail_under_ci(tmp_path: Path, source: str) -> None:
    local = run_pytest(tmp_path, source, ci=False)
    assert "skipped" in local, local
    assert "failed" not in local, local
    assert "error" not in local, local
    under_ci = run_pytest(tmp_path, source, ci=True)
    assert "failed" in under_ci or "error" in under_ci, under_ci
    assert "skipped" not in under_ci, under_ci
