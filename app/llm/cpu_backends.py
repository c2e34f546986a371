"""llama.cpp's CPU kernels: the best variant this machine runs, picked when it loads.

`make install` and the image build llama.cpp with every x86 CPU variant as a library of
its own (`GGML_BACKEND_DL` + `GGML_CPU_ALL_VARIANTS`: x64, SSE4.2, … Haswell, Skylake-X,
Ice Lake, Zen 4, Sapphire Rapids), so one build runs on any x86-64 CPU and uses
AVX-512/VNNI where the CPU has them (prompt evaluation ~1.4x the AVX2 build on these
machines, docs/performance.md) instead of crashing where it lacks them. ggml scores each
variant against the CPU's features and loads the best; this module only points it at
the folder the wheel put them in (its own search looks next to the Python executable
and in the working directory). A build with one CPU backend compiled in (the CUDA image,
an older install) needs none of this: nothing is loaded then.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from pathlib import Path

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: str | None = None
VARIANT_FILE = re.compile(r"^libggml-cpu-([\w.]+)\.so$")


def variant_folders() -> list[Path]:
    """Where an installed llama-cpp-python keeps its CPU variants: llama.cpp's install
    rule puts them in the wheel's `bin/` (site-packages/bin), next to `llama_cpp/`."""
    import llama_cpp

    package = Path(llama_cpp.__file__).parent
    folders = [package / "lib", package.parent / "bin"]
    return [f for f in folders if any(f.glob("libggml-cpu-*.so"))]


def available() -> list[str]:
    """The CPU variants this install holds (empty: one backend compiled in)."""
    names = set()
    for folder in variant_folders():
        for path in folder.glob("libggml-cpu-*.so"):
            match = VARIANT_FILE.search(path.name)
            if match:
                names.add(match.group(1))
    return sorted(names)


def _ggml() -> ctypes.CDLL:
    """ggml's functions as libllama sees them: looked up through libllama's own handle
    (its dependencies included), since the wheel's libggml.so and libggml.so.0 are two
    files, and loading the other would start a second, separate backend registry."""
    from llama_cpp import llama_cpp as bindings

    ggml: ctypes.CDLL = bindings._lib
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load.restype = ctypes.c_void_p
    return ggml


def loaded_variant() -> str | None:
    """The variant this process runs (from its memory map), None when none was loaded."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    found = re.search(r"libggml-cpu-([\w.]+)\.so", maps)
    return found.group(1) if found else None


def load_cpu_backend(variant: str = "auto") -> str | None:
    """Load the CPU variant (`auto`: the best the CPU runs) before the first model, once
    per process; its name, or None for a build with its backend compiled in."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        folders = variant_folders()
        if not folders:
            return None
        ggml = _ggml()
        if ggml.ggml_backend_reg_count() > 0:  # loaded already (e.g. by llama.cpp itself)
            _loaded = loaded_variant()
            return _loaded
        if variant == "auto":
            ggml.ggml_backend_load_all_from_path(str(folders[0]).encode())
        else:
            paths = [f / f"libggml-cpu-{variant}.so" for f in folders]
            path = next((p for p in paths if p.exists()), None)
            if path is None:
                raise ValueError(
                    f"llm.cpu_variant={variant}: no such CPU variant in this build "
                    f"(it has: {', '.join(available())})"
                )
            if not ggml.ggml_backend_load(str(path).encode()):
                raise ValueError(f"llm.cpu_variant={variant}: this CPU cannot run it")
        _loaded = loaded_variant()
        if _loaded is None:
            raise RuntimeError(
                f"llama.cpp loaded no CPU backend from {folders[0]} (variants: "
                f"{', '.join(available())})"
            )
        log.info("llama.cpp CPU kernels: %s (of %d variants built)", _loaded, len(available()))
        return _loaded
