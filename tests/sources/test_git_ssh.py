"""A git source over SSH: what the end-to-end tests against a real sshd
(test_git_sshd.py) cannot provoke, and the key's way into the settings.

`test_an_ssh_error_never_shows_the_key` puts a stand-in `ssh` first on PATH because
OpenSSH never prints a private key: the stand-in does (in its error output), so that
the scrubbing of git's messages is tested. Git, the sync and the stores are real.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.settings import Settings
from app.store.db import open_database
from ingest.sources.git_ssh import ssh_command
from ingest.sources.registry import SourceProblem, Sources
from tests.conftest import Models, make_settings
from tests.sources.conftest import syncing
from tests.sources.servers import git

LEAKY_SSH = """#!/bin/sh
# Stand-in for the ssh client that prints the key file it was given (see the docstring).
key=""; prev=""
for arg in "$@"; do [ "$prev" = "-i" ] && key="$arg"; prev="$arg"; done
cat "$key" >&2
exit 255
"""


@pytest.fixture
def key(tmp_path: Path) -> str:
    """A real ed25519 private key made by ssh-keygen."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True
    )
    return (tmp_path / "id").read_text()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty bare repository."""
    bare = tmp_path / "docs.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    return bare


@pytest.fixture
def leaky_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Puts the stand-in `ssh` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(LEAKY_SSH)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def _settings(tmp_path: Path, keys: dict[str, str]) -> Settings:
    return make_settings(tmp_path / "data", sources={"ssh_keys": keys})


def _add(settings: Settings, name: str, config: dict[str, object]) -> None:
    db = open_database(settings)
    try:
        Sources(db, settings.data_dir).add(name, "keys", "git", config)
    finally:
        db.close()


def test_an_ssh_error_never_shows_the_key(
    tmp_path: Path, models: Models, key: str, repo: Path, leaky_ssh: None
) -> None:
    settings = _settings(tmp_path, {"deploy": key})
    _add(settings, "leaky", {"url": f"ssh://git@docs.example.test{repo}", "ssh_key": "deploy"})
    with syncing(settings, models) as syncer:
        failed = syncer.sync("leaky")
        shown = syncer.sources.get("leaky")
    assert failed.status == "failed"
    assert "git fetch failed" in (failed.error or "")
    assert "***" in (failed.error or "")
    for part in (line for line in key.splitlines() if "-----" not in line):
        assert part not in (failed.error or "")
        assert part not in (shown.last_error or "")


def test_ssh_keys_and_tokens_go_with_their_own_urls(tmp_path: Path, models: Models) -> None:
    settings = _settings(tmp_path, {})
    with syncing(settings, models) as syncer:
        with pytest.raises(SourceProblem, match="ssh_key: only for ssh"):
            syncer.sources.add("a", "keys", "git", {"url": "https://h.test/r", "ssh_key": "x"})
        with pytest.raises(SourceProblem, match="use ssh_key over ssh"):
            syncer.sources.add("b", "keys", "git", {"url": "git@h.test:r", "credential": "x"})


def test_keys_come_from_the_secrets_directory(tmp_path: Path, key: str) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "sources__ssh_keys").write_text(json.dumps({"deploy": key}))
    settings = Settings(_env_file=None, _secrets_dir=str(secrets), env="test")  # type: ignore[call-arg]
    assert settings.sources.ssh_keys["deploy"] == SecretStr(key)
    assert key.splitlines()[1] not in repr(settings.sources)


def test_the_command_quotes_paths_for_the_shell(tmp_path: Path) -> None:
    odd = tmp_path / "it's here" / "key"
    words = shlex.split(ssh_command(odd, tmp_path / "known hosts", pinned=False))
    assert words[words.index("-i") + 1] == str(odd)
    assert f"UserKnownHostsFile={tmp_path / 'known hosts'}" in words
