"""Running an extraction in a child process under a time budget (PDF and office formats).

A parser stuck in one call (pypdf on a hostile content stream, lxml on a huge part) cannot
be interrupted from inside its process; killing a child can, with the programs it started
(the child leads a process group of its own). The child reads the file on
stdin and writes one JSON object per line, flushed as it goes, so the lines written
before a kill are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# The folder that holds the `ingest` package: the child must import this same code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def run_child(
    module: str, args: list[str], data: bytes, timeout_s: float
) -> tuple[list[dict[str, Any]], bool]:
    """`python -m module *args` fed `data`: its JSON lines and whether the budget ran out."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    with subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        # Its own process group: a kill stops the programs it runs too (OCR's tesseract).
        start_new_session=True,
    ) as child:
        try:
            out, _ = child.communicate(data, timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it ended just now
                os.killpg(child.pid, signal.SIGKILL)
            out, _ = child.communicate()  # what it wrote before the kill
            timed_out = True
    lines = []
    for raw in out.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:  # the last line, cut by the kill
            break
    return lines, timed_out
