"""The quality gate on its own: the order of the checks, and what it remembers between documents."""

from __future__ import annotations

from ingest.document import LoadedDocument, Section
from ingest.quality import SeenDocuments, signature, text_hash
from ingest.quality_gate import QualityGate
from tests.ingest.test_quality import prose


def doc(text: str) -> LoadedDocument:
    return LoadedDocument("t", [Section("", text.split("\n\n"))])


def test_verdicts_in_check_order_and_what_the_gate_remembers() -> None:
    seconds: dict[str, float] = {}
    original, broken = prose(1), prose(3) + "\ufffd" * 200
    seen = SeenDocuments()
    seen.add("/d/old.md", "d/old.md", text_hash(original), signature(original))
    seen.add("/d/broken.md", "d/broken.md", text_hash(broken), signature(broken))
    gate = QualityGate(seen, seconds)

    kept = gate.check("/d/a.md", "d/a.md", doc(prose(2)))
    assert (kept.findings, kept.rejection) == ([], None)
    assert kept.fingerprints == (text_hash(prose(2)), signature(prose(2)))

    # An exact copy is rejected as a duplicate, with no near-duplicate finding on top.
    copy = gate.check("/d/copy.md", "d/copy.md", doc(original))
    assert [i.check for i in copy.findings] == ["duplicate"]
    assert copy.rejection is copy.findings[0]
    # Garbled text is found first: it, not the duplicate, is why the page stays out.
    garbled = gate.check("/d/bad.md", "d/bad.md", doc(broken))
    assert [i.check for i in garbled.findings] == ["garbled", "duplicate"]
    assert garbled.rejection is garbled.findings[0]

    # What was let in is compared with from then on; what was rejected is not.
    again = gate.check("/d/b.md", "d/b.md", doc(prose(2)))
    assert [i.reason for i in again.findings] == ["exact duplicate of d/a.md"]
    gate.seen.remove("/d/old.md")
    gate.seen.remove("/d/broken.md")
    assert gate.seen.duplicate_of("/d/x.md", text_hash(original)) is None
    assert gate.seen.duplicate_of("/d/x.md", text_hash(broken)) is None
    assert gate.check_chunks([]) == ([], [])
    assert gate.finish() == []  # fewer than five documents let in: no boilerplate verdict
    assert set(seconds) == {"own text", "fingerprints", "duplicates", "boilerplate"}


def test_a_document_that_became_a_duplicate_is_forgotten() -> None:
    """Its earlier version is withdrawn from the index, so nothing may duplicate it."""
    seen = SeenDocuments()
    seen.add("/d/a.md", "d/a.md", text_hash(prose(1)), signature(prose(1)))
    seen.add("/d/b.md", "d/b.md", text_hash(prose(2)), signature(prose(2)))
    gate = QualityGate(seen)
    assert gate.check("/d/b.md", "d/b.md", doc(prose(1))).rejection is not None
    assert gate.seen.duplicate_of("/d/x.md", text_hash(prose(2))) is None
