"""A git source over SSH with a private key from the secret settings.

No sshd is installed on this machine, so the SSH transport is not tested end to end:
`ssh` on PATH is a stand-in (written below) that records how git called it, has the
real OpenSSH client parse the same options (`ssh -G`) and load the temporary key file
(`ssh-keygen -y`, which refuses a key file others may read), then runs the remote
command (git-upload-pack) locally, as sshd would on the server. Git, the clone, the
sync and the stores are real.
"""

from __future__ import annotations

import json
import logging
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
from tests.sources.conftest import documents, syncing
from tests.sources.servers import git

FAKE_SSH = """#!/bin/sh
# Stand-in for the ssh client (no sshd here): see the test module's docstring.
# git runs it with only its own environment: the log's path is written in.
log="{log}"
key=""; prev=""
for arg in "$@"; do [ "$prev" = "-i" ] && key="$arg"; prev="$arg"; done
for last in "$@"; do :; done
{
  echo "ARGS $*"
  echo "KEYFILE $key"
  echo "MODE $(stat -c %a "$key")"
  ssh-keygen -y -f "$key" >/dev/null && echo "KEY LOADS"
  /usr/bin/ssh -G "$@" | grep -Ei \
    '^(identitiesonly|batchmode|identityagent|stricthostkeychecking|userknownhostsfile) '
} >> "$log" 2>&1
if [ -e "{log}.leak" ]; then
  # Provokes what real ssh does not do: print the key in an error, to test the scrub.
  cat "$key" >&2; exit 255
fi
exec sh -c "$last"
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
    """A bare repository with two pages on main."""
    bare = tmp_path / "docs.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "ssh.md").write_text("# Keys\n\nDeploy keys are rotated every ninety days here.\n")
    (work / "hosts.md").write_text("# Hosts\n\nThe mirror host answers on port two-two-two.\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    git(work, "push", "-q", str(bare), "main")
    return bare


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Puts the stand-in `ssh` first on PATH; the path of its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    log = tmp_path / "ssh.log"
    log.touch()
    script.write_text(FAKE_SSH.replace("{log}", str(log)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return log


def _settings(tmp_path: Path, keys: dict[str, str]) -> Settings:
    return make_settings(tmp_path / "data", sources={"ssh_keys": keys})


def _add(settings: Settings, name: str, config: dict[str, object]) -> None:
    db = open_database(settings)
    try:
        Sources(db, settings.data_dir).add(name, "keys", "git", config)
    finally:
        db.close()


def _lines(log: Path, tag: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith(tag)]


def test_a_source_fetches_over_ssh_with_a_temporary_key_file(
    tmp_path: Path,
    models: Models,
    key: str,
    repo: Path,
    fake_ssh: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(tmp_path, {"deploy": key})
    _add(settings, "handbook", {"url": f"ssh://git@docs.example.test{repo}", "ssh_key": "deploy"})
    with syncing(settings, models) as syncer:
        result = syncer.sync("handbook")
    assert result.status == "completed", result.error
    assert set(documents(settings, models)) == {
        f"docs.example.test{repo.with_suffix('')}/{n}@{result.note.split()[1]}"
        for n in ("hosts.md", "ssh.md")
    }
    (key_file,) = _lines(fake_ssh, "KEYFILE")
    assert _lines(fake_ssh, "MODE") == ["600"]
    assert "KEY LOADS" in fake_ssh.read_text()  # OpenSSH read the file: key and mode fine
    assert not Path(key_file).exists()  # removed after the fetch
    assert not Path(key_file).parent.exists()
    parsed = dict(line.split(" ", 1) for line in fake_ssh.read_text().lower().splitlines())
    workdir = settings.data_dir / "sources"
    assert parsed["identitiesonly"] == "yes"
    assert parsed["batchmode"] == "yes"
    assert parsed["identityagent"] == "none"
    assert parsed["stricthostkeychecking"] == "accept-new"  # first use, then pinned
    assert parsed["userknownhostsfile"].startswith(str(workdir).lower())
    # The key is nowhere but in the settings: not in the database, the clone, the
    # vector store or a log record.
    secret = [line for line in key.splitlines() if "-----" not in line]
    stored = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "docchat.db" for p in stored)
    for path in stored:
        data = path.read_bytes()
        assert not any(part.encode() in data for part in secret), path
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(part in logged for part in secret)


def test_known_host_lines_pin_the_host_key_from_the_first_sync(
    tmp_path: Path, models: Models, key: str, repo: Path, fake_ssh: Path
) -> None:
    settings = _settings(tmp_path, {"deploy": key})
    host_line = "docs.example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyOnly"
    _add(
        settings,
        "pinned",
        {"url": f"git@docs.example.test:{repo}", "ssh_key": "deploy", "known_hosts": host_line},
    )
    with syncing(settings, models) as syncer:
        assert syncer.sync("pinned").status == "completed"
    parsed = dict(line.split(" ", 1) for line in fake_ssh.read_text().lower().splitlines())
    assert parsed["stricthostkeychecking"] == "true"  # ssh -G's word for "yes"
    assert not Path(parsed["userknownhostsfile"]).exists()  # with the key, removed


def test_an_ssh_error_never_shows_the_key(
    tmp_path: Path,
    models: Models,
    key: str,
    repo: Path,
    fake_ssh: Path,
) -> None:
    settings = _settings(tmp_path, {"deploy": key})
    _add(settings, "leaky", {"url": f"ssh://git@docs.example.test{repo}", "ssh_key": "deploy"})
    Path(f"{fake_ssh}.leak").touch()
    with syncing(settings, models) as syncer:
        failed = syncer.sync("leaky")
        shown = syncer.sources.get("leaky")
    assert failed.status == "failed"
    assert "git fetch failed" in (failed.error or "")
    assert "***" in (failed.error or "")
    for part in (line for line in key.splitlines() if "-----" not in line):
        assert part not in (failed.error or "")
        assert part not in (shown.last_error or "")


def test_missing_or_malformed_keys_and_mismatched_urls_are_refused(
    tmp_path: Path, models: Models, repo: Path, fake_ssh: Path
) -> None:
    junk = "ghp_not-a-key-at-all-1234567890"
    settings = _settings(tmp_path, {"junk": junk})
    _add(settings, "nokey", {"url": f"ssh://git@h.test{repo}", "ssh_key": "absent"})
    _add(settings, "junk", {"url": f"ssh://git@h.test{repo}", "ssh_key": "junk"})
    with syncing(settings, models) as syncer:
        missing, malformed = syncer.sync("nokey"), syncer.sync("junk")
        assert missing.error == "ssh key 'absent' is not set in sources.ssh_keys"
        assert "is not a private key" in (malformed.error or "")
        assert junk not in (malformed.error or "")
        assert fake_ssh.read_text() == ""  # refused before git ran
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
