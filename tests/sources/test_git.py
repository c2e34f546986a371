"""A git source against a real repository served by `git http-backend` on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from ingest.pipeline import Ingestor
from ingest.sources.registry import SourceProblem, Sources
from tests.conftest import Models
from tests.sources.conftest import documents, syncing
from tests.sources.servers import GitServer, git, git_server

TOKEN = "s3cret-token-1"

GUIDE = "# Guide\n\nThe frobnicator is configured in frob.toml with the speed key set to fast.\n"
INSTALL = "# Install\n\nInstall the frobnicator with the package manager and start it.\n"
KEEP = "# Keep\n\nThis page about retention of widget logs never changes in these tests.\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GitServer, Path]]:
    """A bare repository `docs.git` served with a token, and a work tree pushing to it."""
    root = tmp_path / "served"
    root.mkdir()
    git(root, "init", "-q", "--bare", "-b", "main", "docs.git")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "docs").mkdir()
    (work / "docs" / "guide.md").write_text(GUIDE)
    (work / "docs" / "install.md").write_text(INSTALL)
    (work / "docs" / "keep.md").write_text(KEEP)
    (work / "docs" / "drafts").mkdir()
    (work / "docs" / "drafts" / "wip.md").write_text("# WIP\n\nNot ready for readers at all yet.\n")
    (work / "README.md").write_text("# Repo\n\nOutside the sub-path, never indexed here.\n")
    commit(work, "first")
    with git_server(root, token=TOKEN) as server:
        yield server, work


def commit(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", str(work.parent / "served" / "docs.git"), "main")
    return git(work, "rev-parse", "HEAD")


def add_source(settings: Settings, server: GitServer, **config: Any) -> None:
    db_settings = settings
    from app.store.db import open_database

    db = open_database(db_settings)
    try:
        Sources(db, settings.data_dir).add(
            "handbook",
            "handbook",
            "git",
            {
                "url": f"{server.url}/docs.git",
                "subpath": "docs",
                "exclude": ["drafts/*"],
                "credential": "repo",
                "web_url": "https://git.example.org/docs/blob/{commit}/{path}",
                **config,
            },
        )
    finally:
        db.close()


def test_first_sync_then_only_the_commit_range(
    settings: Settings,
    models: Models,
    served: tuple[GitServer, Path],
    sync: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, work = served
    add_source(settings, server)
    first = sync("handbook")
    assert first.status == "completed", first.error
    head = git(work, "rev-parse", "HEAD")
    link = f"https://git.example.org/docs/blob/{head}/docs/guide.md"
    assert documents(settings, models) == {
        link: "indexed",
        link.replace("guide", "install"): "indexed",
        link.replace("guide", "keep"): "indexed",
    }

    (work / "docs" / "guide.md").write_text(GUIDE + "\nSpeeds above fast void the warranty.\n")
    (work / "docs" / "install.md").unlink()
    (work / "docs" / "new.md").write_text("# New\n\nThe gizmo ships in spring with a blue lid.\n")
    second_head = commit(work, "second")
    # A spy, not a stand-in: which files the pipeline reads to hash them.
    hashed: list[str] = []
    original = Ingestor._content_hash

    def spy(self: Ingestor, file: Any) -> str:
        hashed.append(file.path.name)
        return original(self, file)

    monkeypatch.setattr(Ingestor, "_content_hash", spy)
    second = sync("handbook")
    assert second.status == "completed", second.error
    summary = second.summary
    assert (summary.new, summary.changed, summary.deleted, summary.unchanged) == (1, 1, 1, 1)
    assert set(hashed) == {"guide.md", "new.md"}  # keep.md was not even read
    docs = documents(settings, models)
    assert f"https://git.example.org/docs/blob/{second_head}/docs/guide.md" in docs
    assert link.replace("guide", "keep") in docs  # unchanged: still cites its commit
    assert not any("install" in d or "wip" in d or "README" in d for d in docs)

    hashed.clear()
    third = sync("handbook")  # nothing new upstream: nothing read at all
    assert third.status == "completed"
    assert hashed == []
    assert third.summary.unchanged == 3


def test_token_never_stored_and_revoked_credentials_fail_that_source_only(
    settings: Settings, models: Models, served: tuple[GitServer, Path], sync: Callable[..., Any]
) -> None:
    server, _ = served
    add_source(settings, server)
    assert sync("handbook").status == "completed"
    assert any(TOKEN not in h and h.startswith("Basic ") for h in server.headers_seen)
    clone = settings.data_dir / "sources"
    for path in clone.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    with syncing(settings, models) as syncer:
        row = syncer.sources.get("handbook")
    assert TOKEN not in str(row.as_dict())
    before = documents(settings, models)

    server.token = "rotated-token-2"  # the old token is revoked
    failed = sync("handbook")
    assert failed.status == "failed"
    assert "git fetch failed" in (failed.error or "")
    assert TOKEN not in (failed.error or "")
    assert documents(settings, models) == before  # nothing lost
    with syncing(settings, models) as syncer:
        shown = syncer.sources.get("handbook")
    assert shown.last_status == "failed"
    assert shown.last_error == failed.error
    assert shown.last_success_at is not None


def test_missing_credential_and_url_with_a_secret_are_refused(
    settings: Settings, models: Models, served: tuple[GitServer, Path], sync: Callable[..., Any]
) -> None:
    server, _ = served
    add_source(settings, server, credential="nope")
    result = sync("handbook")
    assert result.status == "failed"
    assert "credential 'nope' is not set" in (result.error or "")
    with syncing(settings, models) as syncer, pytest.raises(SourceProblem, match="no credentials"):
        syncer.sources.add(
            "leaky", "handbook", "git", {"url": f"http://u:{TOKEN}@127.0.0.1/docs.git"}
        )


def test_too_many_files_stop_that_source_with_a_clear_error(
    settings: Settings, models: Models, served: tuple[GitServer, Path], sync: Callable[..., Any]
) -> None:
    server, _ = served
    add_source(settings, server, max_files=2)
    result = sync("handbook")
    assert result.status == "failed"
    assert "more than 2 files to index" in (result.error or "")
    assert documents(settings, models) == {}
