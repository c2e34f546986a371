"""What a test needs from the machine beyond the locked Python packages: a Debian package
(Chromium, promtool, a manual), an optional extra (peft), a server. Where it is missing
the test is skipped locally, but fails where the environment variable CI is set: CI
installs all of them (.ci/run, the Dockerfile's test stage) and has to prove these paths,
not skip them. Every such skip in the suite goes through `missing`."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip (the whole module, where called at import), or fail under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need_module(name: str, reason: str) -> ModuleType:
    """The imported module, or `missing`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} is not installed: {reason}")


def need_tool(name: str, reason: str) -> str:
    """The path of a command on PATH, or `missing`."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not on PATH: {reason}")
    return found


def need_path(path: Path, reason: str) -> Path:
    """A file or folder that a Debian package installs, or `missing`."""
    if not path.exists():
        missing(f"{path} is missing: {reason}")
    return path
