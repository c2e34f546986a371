"""A changed or deleted source document makes an example stale; refresh or drop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.components import open_database
from app.curation import datasets, examples, staleness
from app.curation.errors import CurationError
from app.store.models import CuratedExample, Document
from tests.conftest import Models, ingest_into
from tests.curation.conftest import deployment


def test_changed_document_makes_stale_and_refresh_fixes_it(tmp_path: Path, models: Models) -> None:
    settings, corpus = deployment(tmp_path, models)
    db = open_database(settings)
    with db.session() as session:
        guide = examples.add(
            session,
            "Which file configures it?",
            "widget.toml.",
            collection="docs",
            reviewer="r",
            sources=["guide.md"],
        ).id
        notes = examples.add(
            session,
            "What do the notes say?",
            "See notes.",
            collection="docs",
            reviewer="r",
            sources=["notes.txt"],
        ).id
        assert staleness.check(session) == []
        old_hash = session.get_one(CuratedExample, guide).passages[0]["content_hash"]

    text = (corpus / "guide.md").read_text()
    (corpus / "guide.md").write_text(
        text.replace("/etc/widget/widget.toml", "/etc/widget/server.toml")
    )
    ingest_into(settings, models.embedder, corpus)
    with db.session() as session:
        stale = staleness.check(session)
        assert [e.id for e in stale] == [guide]
        assert "guide.md: the document changed" in (stale[0].stale_reason or "")
        assert [e.id for e in examples.listed(session, status="stale")] == [guide]
        # A dataset takes active examples only.
        built = datasets.build(session, settings.data_dir, "before-refresh")
        assert [r["id"] for r in built.rows] == [notes]

    with db.session() as session:
        refreshed = examples.refresh(session, guide, reviewer="r2")
        (passage,) = refreshed.passages
        document = session.get_one(Document, passage["document_id"])
        assert passage["content_hash"] == document.content_hash != old_hash
        assert "server.toml" in passage["text"]
        assert (refreshed.status, refreshed.stale_reason) == ("active", None)
        assert staleness.check(session) == []

    (corpus / "notes.txt").unlink()
    ingest_into(settings, models.embedder, corpus)
    with db.session() as session:
        (gone,) = staleness.check(session)
        assert gone.id == notes
        assert "the document is gone" in (gone.stale_reason or "")
    with pytest.raises(CurationError, match="drop the example"), db.session() as session:
        examples.refresh(session, notes, reviewer="r")
    with db.session() as session:
        assert examples.drop(session, notes, reviewer="r").status == "dropped"
        assert staleness.check(session) == []
        assert [e.id for e in examples.listed(session, status="dropped")] == [notes]
    db.close()
