"""security.canary: the system prompt's marker pinned where greedy answers must repeat
between processes (the tests), and a random one in every process where it is not set.

Before the setting, each process drew its own canary, so the same question under greedy
decoding could get a different answer in another process (the prompt differed); these
tests failed then (no setting, and two processes gave two system prompts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.components import Components, build_guards
from app.rag.prompt import system_prompt
from app.security.output_guard import EVALUATION_CANARY, OutputGuard
from app.settings import Settings
from app.store.db import open_database
from tests.conftest import TEST_CANARY, make_settings

ENV = "DOCCHAT_SECURITY__CANARY"
# A process of its own prints the system prompt it would send, built as the server does.
PRINT_PROMPT = (
    "from app.components import build_guards; from app.rag.prompt import system_prompt; "
    "from app.settings import Settings; from app.store.db import open_database; "
    "s = Settings(_env_file=None); print(system_prompt(build_guards(s, open_database(s))"
    ".output.canary))"
)


def prompt_of(settings: Settings) -> str:
    db = open_database(settings)
    try:
        return system_prompt(build_guards(settings, db).output.canary)
    finally:
        db.close()


def test_a_pinned_canary_gives_the_same_system_prompt(tmp_path: Path) -> None:
    first = prompt_of(make_settings(tmp_path / "a"))
    assert first == prompt_of(make_settings(tmp_path / "b"))
    assert f"DOCCHAT-CANARY-{TEST_CANARY}" in first


def test_unset_draws_a_random_canary_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    unset = {"security": {"rate_limit_per_minute": 0, "auth_failures_per_minute": 0}}
    first = make_settings(tmp_path / "a", **unset)
    assert first.security.canary is None
    assert prompt_of(first) != prompt_of(make_settings(tmp_path / "b", **unset))


@pytest.mark.parametrize("value", ["short1", "has-dash-0123456789", "x" * 65])
def test_a_canary_is_one_long_word(value: str) -> None:
    with pytest.raises(ValidationError, match="16 to 64 letters and digits"):
        Settings(_env_file=None, security={"canary": value})  # type: ignore[arg-type]


def system_prompt_in_a_process(tmp_path: Path, canary: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["DOCCHAT_DATA_DIR"] = str(tmp_path)
    if canary:
        env[ENV] = canary
    done = subprocess.run(
        [sys.executable, "-c", PRINT_PROMPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_processes_agree_on_a_pinned_canary_and_not_on_a_random_one(tmp_path: Path) -> None:
    pinned = [system_prompt_in_a_process(tmp_path / str(n), TEST_CANARY) for n in (1, 2)]
    assert pinned[0] == pinned[1]
    assert TEST_CANARY in pinned[0]
    drawn = [system_prompt_in_a_process(tmp_path / str(n), None) for n in (3, 4)]
    assert drawn[0] != drawn[1]
    assert "DOCCHAT-CANARY-" in drawn[0]


def test_evaluations_answer_with_the_fixed_evaluation_canary(components: Components) -> None:
    """The release gate and `docchat eval answers` plant EVALUATION_CANARY, not this
    process's marker, and still withhold what the server's guard withholds."""
    evaluating = components.evaluating()
    assert evaluating.chat.system == system_prompt(EVALUATION_CANARY)
    assert components.guards.output.canary not in evaluating.chat.system
    assert components.chat.system == system_prompt(components.guards.output.canary)
    guard = evaluating.guards.output
    assert guard.violation(f"the marker is {EVALUATION_CANARY}") == "system prompt canary"
    # Secrets and patterns carry over to the guard with the other canary.
    patterned = OutputGuard(["a-secret-value-of-some-length"], "C", ["internal-build-[0-9]+"])
    kept = patterned.with_canary(EVALUATION_CANARY, system_prompt(EVALUATION_CANARY))
    assert kept.violation("see internal-build-42") == "blocked pattern 1"
    assert kept.violation("it is a-secret-value-of-some-length") == "secret value"
