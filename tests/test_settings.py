"""Settings: sources, their precedence, and `config show`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config_report import MASK, settings_report
from app.settings import Settings, load_settings

CANARY = "postgresql://docchat:CANARY-db-pass-3f9a@127.0.0.1:1/docchat"


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A .env file and a secrets dir in a clean working directory, no DOCCHAT_ vars."""
    for name in list(os.environ):
        if name.startswith("DOCCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("DOCCHAT_SECRETS_DIR", str(secrets))
    return tmp_path


def test_defaults_are_the_embedded_ones(sources: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == sources / "data"
    assert settings.database_url == f"sqlite:///{sources / 'data' / 'docchat.db'}"
    assert settings.chroma_path == sources / "data" / "chroma"
    assert settings.vectors.url is None
    assert settings.llm.model_path is None


def test_precedence_environment_then_dotenv_then_secrets(
    sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sources / "secrets" / "llm__n_ctx").write_text("1024")
    (sources / "secrets" / "rag__top_k").write_text("7")
    (sources / "secrets" / "llm__n_batch").write_text("64")
    (sources / ".env").write_text("DOCCHAT_LLM__N_CTX=2048\nDOCCHAT_RAG__TOP_K=9\n")
    monkeypatch.setenv("DOCCHAT_LLM__N_CTX", "8192")
    settings = load_settings()
    assert settings.llm.n_ctx == 8192  # environment beats .env and secrets
    assert settings.rag.top_k == 9  # .env beats secrets
    assert settings.llm.n_batch == 64  # secrets beat defaults
    assert settings.llm.n_threads is None  # default


def test_prompt_chunk_is_a_size_or_auto(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCCHAT_LLM__PREFILL_CHUNK", "auto")
    assert load_settings().llm.prefill_chunk == "auto"
    monkeypatch.setenv("DOCCHAT_LLM__PREFILL_CHUNK", "32")
    assert load_settings().llm.prefill_chunk == 32
    for wrong in ("-1", "some"):
        monkeypatch.setenv("DOCCHAT_LLM__PREFILL_CHUNK", wrong)
        with pytest.raises(ValueError, match="prefill_chunk"):
            load_settings()


def test_secret_from_file_is_masked(sources: Path) -> None:
    (sources / "secrets" / "database__url").write_text(CANARY)
    settings = load_settings()
    assert settings.database_url == CANARY
    assert CANARY not in repr(settings)
    rows = {r["name"]: r for r in settings_report(settings)}
    assert rows["database.url"]["value"] == MASK
    assert rows["database.url"]["source"].startswith("secrets dir")
    assert CANARY not in json.dumps(settings_report(settings))


def test_report_names_each_source(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sources / ".env").write_text("DOCCHAT_RAG__MIN_SCORE=0.5\n")
    monkeypatch.setenv("DOCCHAT_LLM__N_THREADS", "2")
    rows = {r["name"]: r for r in settings_report(load_settings())}
    assert rows["llm.n_threads"]["source"].startswith("environment")
    assert rows["llm.n_threads"]["value"] == 2
    assert rows["rag.min_score"]["source"] == ".env file"
    assert rows["rag.top_k"]["source"] == "default"
    assert rows["llm.n_ctx"]["env"] == "DOCCHAT_LLM__N_CTX"


def test_every_setting_is_documented() -> None:
    from pydantic import BaseModel

    from app.settings import Settings

    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                missing += walk(annotation, f"{prefix}{name}.")
            elif not field.description:
                missing.append(prefix + name)
        return missing

    assert walk(Settings, "") == []


def test_config_show_command(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sources / "secrets" / "database__url").write_text(CANARY)
    env = {**os.environ, "DOCCHAT_RAG__TOP_K": "6", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "config", "show", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=sources,
    )
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["rag.top_k"]["value"] == 6
    assert rows["database.url"]["value"] == MASK
    # The password, not the word: the environment names DOCCHAT_SECURITY__CANARY.
    assert "CANARY-db-pass" not in result.stdout + result.stderr
    table = subprocess.run(
        [sys.executable, "-m", "app.cli", "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=sources,
    )
    assert "rag.top_k" in table.stdout
    assert "CANARY-db-pass" not in table.stdout + table.stderr


def test_the_documented_settings_are_the_real_ones() -> None:
    """docs/configuration.md ends with the reference that the settings themselves give
    (regenerate with `docchat config reference`): a new or changed setting cannot go
    undocumented."""
    from app.config_report import settings_reference

    documented = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    assert documented.endswith(settings_reference()), (
        "docs/configuration.md is out of date: replace everything from '### top level' "
        "with the output of `docchat config reference`"
    )


def test_an_empty_gate_latency_ratio_turns_the_rule_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documented as "Empty: latency does not gate", yet the environment could not say
    it: an empty variable was refused as not a number."""
    monkeypatch.setenv("DOCCHAT_MODELS__GATE_LATENCY_RATIO", "")
    assert Settings(_env_file=None).models.gate_latency_ratio is None  # type: ignore[call-arg]
    monkeypatch.setenv("DOCCHAT_MODELS__GATE_LATENCY_RATIO", "3")
    assert Settings(_env_file=None).models.gate_latency_ratio == 3.0  # type: ignore[call-arg]
