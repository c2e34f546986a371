"""Ingest with its stages overlapped (ingest/stages.py): the same stores as one file at a
time, a bad file in the middle loses nothing of the others, and an error in a stage's
thread stops the run in the caller with nothing half-written. Real models, real Chroma,
SQLite; the one stand-in (an embedder that fails on its third call) says why."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.components import open_database
from app.llm.embedder import Embedder
from app.store.index_record import IndexRecord
from app.store.models import Document, IngestRun
from app.store.vectors import VectorStore
from ingest.pipeline import EmbeddingModel
from ingest.stages import SWITCH_INTERVAL_S, FileStep, run_overlapped, run_sequential
from tests.conftest import Models, make_settings
from tests.ingest.test_pipeline import run, stored_state

pytestmark = pytest.mark.slow


def folder_with_bad_files(tmp_path: Path, pages: int = 30) -> Path:
    """Markdown pages, with a corrupt PDF and a binary file among them."""
    docs = tmp_path / "docs"
    docs.mkdir()
    paragraph = "The vacuum process reclaims storage held by dead tuples in each table. " * 5
    for i in range(pages):
        body = "\n\n".join(f"## Step {j}\n\n{i}-{j}: {paragraph}" for j in range(4))
        (docs / f"page{i:02}.md").write_text(f"# Page {i}\n\n{body}\n")
    (docs / "page10.md").unlink()
    (docs / "page10.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 20)
    (docs / "page20.md").write_bytes(b"# Page 20\n\x00\x01\x02" * 200)
    return docs


def findings(settings_dir: Path) -> list[tuple[str, str, str]]:
    db = open_database(make_settings(settings_dir))
    with db.session() as session:
        run_row = session.scalars(select(IngestRun).order_by(IngestRun.id.desc())).first()
        assert run_row is not None
        found = sorted((f.path, f.check, f.severity) for f in run_row.findings)
    db.close()
    return found


def test_overlapped_matches_one_at_a_time_and_a_bad_file_loses_nothing(
    tmp_path: Path, models: Models
) -> None:
    docs = folder_with_bad_files(tmp_path)
    overlapped = make_settings(tmp_path / "overlapped")
    assert overlapped.ingest.overlap_stages  # the default
    sequential = make_settings(tmp_path / "sequential", ingest={"overlap_stages": False})

    fast = run(overlapped, models, docs)
    slow = run(sequential, models, docs)

    assert (fast.new, fast.failed, fast.chunks_written) == (28, 2, slow.chunks_written)
    assert (slow.new, slow.failed) == (28, 2)
    assert fast.status == slow.status == "partial"
    state = stored_state(overlapped)
    assert state == stored_state(sequential)
    assert {source for source, *_ in state["docs"]} == {  # type: ignore[attr-defined]
        f"docs/page{i:02}.md" for i in range(30) if i not in (10, 20)
    }
    assert findings(tmp_path / "overlapped") == findings(tmp_path / "sequential")
    assert {"docs/page10.pdf", "docs/page20.md"} <= {
        p for p, *_ in findings(tmp_path / "overlapped")
    }
    # Every stage was timed, in its own thread.
    assert {"load", "chunk", "embed", "store"} <= set(fast.stages)


class FailingEmbedder:
    """The real embedder, failing on its third call: a real model does not fail on
    demand, and an error in the embedding thread is what this provokes."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.calls = inner, 0
        self.name, self.identity = inner.name, inner.identity

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("the embedder broke")
        return self.inner.embed(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def variant_for(self, record: IndexRecord | None, *, new: bool = False) -> EmbeddingModel:
        return self


def test_an_error_in_the_embedding_thread_stops_the_run_and_a_rerun_converges(
    tmp_path: Path, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = folder_with_bad_files(tmp_path, pages=60)
    settings = make_settings(tmp_path / "data")
    failing = FailingEmbedder(models.embedder)
    monkeypatch.setattr(models, "embedder", failing)
    with pytest.raises(RuntimeError, match="the embedder broke"):
        run(settings, models, docs)
    monkeypatch.undo()
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-")]

    db = open_database(settings)
    with db.session() as session:
        statuses = list(session.scalars(select(Document.status)))
        last = session.scalars(select(IngestRun.status).order_by(IngestRun.id.desc())).first()
    db.close()
    assert last == "interrupted"
    assert set(statuses) <= {"indexed"}  # nothing half-written
    assert len(statuses) < 58

    summary = run(settings, models, docs)
    assert summary.new + summary.unchanged == 58
    fresh = make_settings(tmp_path / "fresh")
    run(fresh, models, docs)
    assert stored_state(settings) == stored_state(fresh)


def test_overlapped_stages_finish_in_file_order_with_each_files_vectors() -> None:
    """Files of 0 to 7 chunks, embedded across files in batches: each gets its own."""
    files = [(i, i % 8) for i in range(50)]
    calls: list[int] = []

    def prepare(file: tuple[int, int]) -> FileStep:
        number, chunks = file
        return FileStep(str(number), "new", chunks, [f"{number}:{j}" for j in range(chunks)])

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return [[float(t.split(":")[0]), float(t.split(":")[1])] for t in texts]

    for runner in (run_overlapped, run_sequential):
        done: list[FileStep] = []
        runner(files, prepare, embed, done.append)
        assert [s.source for s in done] == [str(i) for i in range(50)]
        for step in done:
            assert step.embeddings == [[float(step.source), float(j)] for j in range(step.chunks)]
    assert sum(calls) == 2 * sum(c for _, c in files)


def test_an_error_in_the_preparing_thread_is_raised_in_the_caller() -> None:
    def prepare(file: int) -> FileStep:
        if file == 5:
            raise ValueError("a bug in a check")
        return FileStep(str(file), "new", 1, ["x"])

    done: list[FileStep] = []
    with pytest.raises(ValueError, match="a bug in a check"):
        run_overlapped(range(10), prepare, lambda texts: [[1.0]] * len(texts), done.append)
    assert [s.source for s in done] == [str(i) for i in range(len(done))]
    assert len(done) <= 5
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-")]


def test_threads_switch_often_while_stages_overlap_and_as_before_after() -> None:
    """The embedder's thread waits less for the GIL during a run; the process's own
    switch interval is back afterwards, also when the run fails, and a run inside
    another (two syncs in one server) does not restore it early."""
    before = sys.getswitchinterval()
    seen: list[float] = []

    def prepare(file: int) -> FileStep:
        seen.append(sys.getswitchinterval())
        if file == 3:
            inner: list[FileStep] = []
            run_overlapped(range(2), lambda f: FileStep(str(f), "new"), list, inner.append)
            seen.append(sys.getswitchinterval())  # the inner run has ended
        return FileStep(str(file), "new", 1, ["x"])

    done: list[FileStep] = []
    run_overlapped(range(5), prepare, lambda texts: [[1.0]] * len(texts), done.append)
    assert seen
    assert set(seen) == {SWITCH_INTERVAL_S}
    assert sys.getswitchinterval() == before
    with pytest.raises(ValueError, match="a bug"):
        run_overlapped(range(3), _failing_prepare, lambda texts: [[1.0]], done.append)
    assert sys.getswitchinterval() == before


def _failing_prepare(file: int) -> FileStep:
    raise ValueError("a bug")


def test_files_are_written_a_few_at_a_time_to_the_same_stores(
    tmp_path: Path, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New files go to Chroma in calls of up to ingest.write_chunks chunks, not one call
    per file: the stores end as with one file a call (write_chunks=1), and the calls are
    fewer. (The upsert is the real one, counted on its way.)"""
    docs = folder_with_bad_files(tmp_path)
    calls: list[int] = []
    upsert = VectorStore.upsert

    def counted(self: VectorStore, collection: str, ids: Sequence[str], *a: Any, **k: Any) -> None:
        calls.append(len(ids))
        upsert(self, collection, ids, *a, **k)

    monkeypatch.setattr(VectorStore, "upsert", counted)
    batched = make_settings(tmp_path / "batched")
    summary = run(batched, models, docs)
    assert summary.new == 28
    assert len(calls) < 28 / 4  # 4 chunks a page: a call holds many pages
    assert sum(calls) == summary.chunks_written
    calls.clear()
    single = make_settings(tmp_path / "single", ingest={"write_chunks": 1})
    run(single, models, docs)
    assert len(calls) == 28
    assert stored_state(batched) == stored_state(single)
