"""Hybrid search on real ingests: the BM25 index follows new, changed and deleted
files (embedded stores and the server pair), survives a restart from its saved copy,
and fusion finds an exact term that the vectors rank low."""

from __future__ import annotations

import json

import numpy as np

from app.rag.retrieval import fuse, names_something
from app.store.lexical import LexicalIndex, tokens
from tests.rag.conftest import Stores


def sources_for(stores: Stores, query: str) -> tuple[list[str], list[str]]:
    """Sources of the hybrid hits and of the BM25 hits alone, best first."""
    db, vectors = stores.open()
    try:
        retriever = stores.retriever(db, vectors)
        assert retriever.lexical is not None
        hybrid = [str(h.metadata["source"]) for h in retriever.search_sync(query, k=5)]
        retriever.lexical.refresh()
        by_words = retriever.lexical.search(query, 5)
        chunk_sources = {
            h.id: str(h.metadata["source"])
            for h in vectors.get(stores.settings.vectors.collection, [h.chunk_id for h in by_words])
        }
        return hybrid, [chunk_sources[h.chunk_id] for h in by_words]
    finally:
        vectors.close()
        db.close()


def test_the_lexical_index_follows_new_changed_and_deleted_files(stores: Stores) -> None:
    zebra = stores.docs / "zebra.md"
    zebra.write_text(
        "# Zebra tuning\n\nSet quuxfrobnicator to 12 to tune the zebra cache.\n", "utf-8"
    )
    stores.ingest()
    hybrid, words = sources_for(stores, "What is quuxfrobnicator?")
    assert words == ["docs/zebra.md"]
    assert hybrid[0] == "docs/zebra.md"

    zebra.write_text("# Zebra tuning\n\nSet plughwidget to 12 to tune the zebra cache.\n", "utf-8")
    stores.ingest()
    assert sources_for(stores, "quuxfrobnicator")[1] == []  # the old term is gone
    assert sources_for(stores, "plughwidget")[1] == ["docs/zebra.md"]

    zebra.unlink()
    stores.ingest()
    hybrid, words = sources_for(stores, "plughwidget zebra")
    assert words == []
    assert "docs/zebra.md" not in hybrid


def test_a_saved_index_catches_up_with_what_changed_since(stores: Stores) -> None:
    db, vectors = stores.open()
    collection = stores.settings.vectors.collection
    cache = stores.settings.data_dir / "lexical"
    try:
        index = LexicalIndex(db, collection, cache)
        index.refresh()
        index.save()
        before = index.size
    finally:
        vectors.close()
        db.close()
    (stores.docs / "guide.md").unlink()
    (stores.docs / "extra.md").write_text("# Extra\n\nThe frobozz setting is new.\n", "utf-8")
    stores.ingest()
    db, vectors = stores.open()
    try:
        restarted = LexicalIndex(db, collection, cache)
        assert restarted.size == before  # read back from disk, as saved
        assert restarted.refresh()  # then brought in step with SQL
        assert [h.chunk_id for h in restarted.search("frobozz", 3)]
        assert not restarted.search("listen_address", 3)  # only guide.md had it
        fresh = LexicalIndex(db, collection)
        fresh.refresh()
        assert restarted.size == fresh.size
    finally:
        vectors.close()
        db.close()


def test_an_index_saved_by_another_tokenizer_is_rebuilt(stores: Stores) -> None:
    db, _vectors = stores.open()
    _vectors.close()
    collection = stores.settings.vectors.collection
    cache = stores.settings.data_dir / "lexical"
    try:
        index = LexicalIndex(db, collection, cache)
        index.refresh()
        index.save()
        with np.load(index.path) as data:  # type: ignore[arg-type]
            saved = {name: data[name] for name in data.files}
        header = json.loads(bytes(saved["header"]).decode())
        header["tokenizer"] = -1
        saved["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        assert index.path is not None
        with index.path.open("wb") as out:
            np.savez(out, **saved)
        reread = LexicalIndex(db, collection, cache)
        assert reread.size == 0  # not trusted
        assert reread.refresh()
        assert reread.size == index.size
    finally:
        db.close()


def test_fusion_ranks_an_exact_term_the_vectors_rank_low(stores: Stores) -> None:
    codes = stores.docs / "errors.md"
    lines = ["# Error codes\n"]
    causes = [
        "the disk is full",
        "the network is unreachable",
        "a widget name is invalid",
        "the licence expired",
        "the cache is corrupt",
        "a plugin failed to load",
        "the clock is skewed",
        "the port is taken",
        "a quota was exceeded",
        "the certificate is untrusted",
    ]
    for i, cause in enumerate(causes):
        lines.append(f"## Code WX-{4100 + i * 7}\n\nWX-{4100 + i * 7} means that {cause}.\n")
    codes.write_text("\n".join(lines), "utf-8")
    stores.ingest()
    target = "WX-4163"  # the quota code
    query = f"My server log shows {target}. What is wrong?"
    db, vectors = stores.open()
    try:
        collection = stores.settings.vectors.collection
        vector_only = stores.retriever(db, vectors, retrieval="vector")
        hybrid = stores.retriever(db, vectors)
        by_vector = [h.text for h in vector_only.search_sync(query, k=20)]
        by_both = hybrid.search_sync(query, k=5)
        vector_rank = next((i for i, t in enumerate(by_vector) if target in t), len(by_vector))
        hybrid_rank = next(i for i, h in enumerate(by_both) if target in h.text)
        assert vector_rank > 0, "the vectors alone already rank it first: a weak test"
        assert hybrid_rank < vector_rank
        assert hybrid_rank < 3  # among the passages a prompt gets
        best = by_both[hybrid_rank]
        assert "quota" in best.text
        assert best.metadata["source"] == "docs/errors.md"
        # Its score is still the cosine similarity, comparable with rag.min_score.
        vector = np.asarray(stores.models.embedder.embed([query])[0])
        chunk = vectors.get(collection, [best.id])[0]
        assert abs(best.score - float(vector @ np.asarray(chunk.embedding))) < 1e-4
    finally:
        vectors.close()
        db.close()


def test_reciprocal_rank_fusion() -> None:
    assert fuse([["a", "b", "c"], ["c", "d"]]) == ["c", "a", "b", "d"]
    assert fuse([["a"], []]) == ["a"]


def test_weighted_fusion_and_what_counts_as_a_name() -> None:
    assert fuse([["a", "b"], ["b", "c"]], [1.0, 1.0]) == ["b", "a", "c"]
    assert fuse([["a", "b"], ["b", "c"]], [1.0, 0.0]) == ["a", "b", "c"]
    assert fuse([["a", "b"], ["c"]], [1.0, 0.25]) == ["a", "b", "c"]
    for named in ("What does json.dumps do?", "git commit --amend", "WX-4163", "use `x`"):
        assert names_something(named)
    assert not names_something("How do I rename a branch?")


def test_tokens_keep_names_whole_and_stem_words() -> None:
    assert tokens("Undoing commits with core.autocrlf") == [
        "undo",
        "commit",
        "core.autocrlf",
        "core",
        "autocrlf",
    ]
    assert "sort_keys" in tokens("json.dumps(obj, sort_keys=True)")
