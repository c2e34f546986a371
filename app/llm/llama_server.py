"""`python -m app.llm.llama_server ARGS`: llama-cpp-python's own OpenAI-compatible
server (`llama_cpp.server`, the same arguments), with llama.cpp's CPU kernels loaded
first. docchat's build of llama.cpp keeps each CPU variant in a library of its own
(app/llm/cpu_backends.py) that the caller must load; `python -m llama_cpp.server`
alone would find none and refuse every model. For a remote backend (docs/scale-out.md)
and the tests and benchmarks that start one.
"""

from __future__ import annotations

import runpy

from app.llm.cpu_backends import load_cpu_backend

if __name__ == "__main__":
    load_cpu_backend()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
