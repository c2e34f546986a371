"""A git source over SSH end to end: a real sshd on loopback (tests/sources/sshd.py)
serving a bare repository, the key given as the secret setting sources.ssh_keys, git
and OpenSSH's client as docchat runs them, real stores."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from app.store.db import open_database
from ingest.sources.registry import Sources
from tests.conftest import Models, make_settings
from tests.sources.conftest import documents, syncing
from tests.sources.servers import git
from tests.sources.sshd import SshServer, keypair, ssh_server

KEYS = "# Keys\n\nDeploy keys are rotated every ninety days here.\n"
HOSTS = "# Hosts\n\nThe mirror host answers on port two-two-two.\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SshServer]:
    with ssh_server(tmp_path / "sshd") as running:
        yield running


@pytest.fixture
def key(tmp_path: Path, server: SshServer) -> tuple[str, str]:
    """A deploy key the server accepts: (private, public)."""
    private, public = keypair(tmp_path / "deploy")
    server.authorize(public)
    return private, public


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A work tree whose pushes go to the bare `docs.git`, with two pages on main."""
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(tmp_path / "docs.git"))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "keys.md").write_text(KEYS)
    (work / "hosts.md").write_text(HOSTS)
    push(work, "first")
    return work


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the key files go to, watched by the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def push(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", str(work.parent / "docs.git"), "main")
    return git(work, "rev-parse", "HEAD")[:12]


def settings_with(tmp_path: Path, keys: dict[str, str]) -> Settings:
    return make_settings(tmp_path / "data", sources={"ssh_keys": keys})


def add(settings: Settings, name: str, config: dict[str, object]) -> None:
    db = open_database(settings)
    try:
        Sources(db, settings.data_dir).add(name, "keys", "git", config)
    finally:
        db.close()


def test_syncs_then_follows_a_commit_and_a_revoked_key_loses_nothing(
    tmp_path: Path,
    models: Models,
    server: SshServer,
    key: tuple[str, str],
    work: Path,
    private_tmp: Path,
) -> None:
    private, public = key
    settings = settings_with(tmp_path, {"deploy": private})
    repo = tmp_path / "docs.git"
    add(settings, "handbook", {"url": server.url(repo), "ssh_key": "deploy"})
    with syncing(settings, models) as syncer:
        first = syncer.sync("handbook")
        workdir = syncer.sources.workdir(syncer.sources.get("handbook").id)
    assert first.status == "completed", first.error
    head = git(work, "rev-parse", "HEAD")[:12]
    label = f"127.0.0.1:{server.port}{repo.with_suffix('')}"
    assert documents(settings, models) == {
        f"{label}/keys.md@{head}": "indexed",
        f"{label}/hosts.md@{head}": "indexed",
    }
    assert "Accepted publickey" in server.log()
    # The host key seen first is pinned beside the clone; the key file is gone.
    assert (workdir / "known_hosts").read_text().split()[1:] == (
        server.known_hosts_line().split()[1:]
    )
    assert list(private_tmp.iterdir()) == []
    secret = [line for line in private.splitlines() if "-----" not in line]
    stored = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    for path in stored:
        assert not any(part.encode() in path.read_bytes() for part in secret), path

    (work / "keys.md").write_text(KEYS + "\nA lost key is revoked within the hour.\n")
    second_head = push(work, "second")
    with syncing(settings, models) as syncer:
        second = syncer.sync("handbook")
    assert second.status == "completed", second.error
    assert (second.summary.changed, second.summary.unchanged) == (1, 1)
    before = documents(settings, models)
    assert f"{label}/keys.md@{second_head}" in before
    assert f"{label}/hosts.md@{head}" in before  # unchanged: still cites its commit

    server.revoke(public)
    (work / "hosts.md").unlink()  # upstream moves on; the source cannot see it
    push(work, "third")
    with syncing(settings, models) as syncer:
        failed = syncer.sync("handbook")
        shown = syncer.sources.get("handbook")
    assert failed.status == "failed"
    assert (failed.error or "").startswith("the server refused ssh key 'deploy'")
    assert "Permission denied (publickey)" in (failed.error or "")
    assert shown.last_error == failed.error
    assert shown.last_success_at is not None
    assert shown.state["commit"].startswith(second_head)  # the last commit ingested
    assert documents(settings, models) == before  # nothing lost
    assert list(private_tmp.iterdir()) == []


def test_host_keys_given_or_pinned_are_checked(
    tmp_path: Path, models: Models, server: SshServer, key: tuple[str, str], work: Path
) -> None:
    settings = settings_with(tmp_path, {"deploy": key[0]})
    url = server.url(tmp_path / "docs.git")
    _, stranger = keypair(tmp_path / "stranger")
    wrong = f"[127.0.0.1]:{server.port} {' '.join(stranger.split()[:2])}"
    add(
        settings,
        "given",
        {"url": url, "ssh_key": "deploy", "known_hosts": server.known_hosts_line()},
    )
    add(settings, "wrong", {"url": url, "ssh_key": "deploy", "known_hosts": wrong})
    add(settings, "pinned", {"url": url, "ssh_key": "deploy"})
    with syncing(settings, models) as syncer:
        given, refused, pinned = (syncer.sync(n) for n in ("given", "wrong", "pinned"))
        assert given.status == pinned.status == "completed", (given.error, pinned.error)
        assert refused.status == "failed"
        assert refused.error == (
            f"the server's host key ({server.fingerprint()}) is not the source's "
            "known_hosts lines; git fetch failed: Host key verification failed"
        )
        accepted = server.log().count("Accepted publickey")
        assert accepted == 2  # the key was never offered to the wrong host

        server.new_host_key()  # the same address now answers with another host key
        moved = syncer.sync("pinned")
        assert moved.status == "failed"
        assert (moved.error or "").startswith(
            f"the server's host key ({server.fingerprint()}) is not the one pinned at the "
            "first sync"
        )
        assert "Host key verification failed" in (moved.error or "")
        assert server.log().count("Accepted publickey") == accepted


def test_missing_or_malformed_keys_fail_before_connecting(
    tmp_path: Path, models: Models, server: SshServer, work: Path
) -> None:
    junk = "ghp_not-a-key-at-all-1234567890"
    settings = settings_with(tmp_path, {"junk": junk})
    url = server.url(tmp_path / "docs.git")
    add(settings, "nokey", {"url": url, "ssh_key": "absent"})
    add(settings, "junk", {"url": url, "ssh_key": "junk"})
    with syncing(settings, models) as syncer:
        missing, malformed = syncer.sync("nokey"), syncer.sync("junk")
    assert missing.error == "ssh key 'absent' is not set in sources.ssh_keys"
    assert "is not a private key" in (malformed.error or "")
    assert junk not in (malformed.error or "")
    assert server.connections() == 0
