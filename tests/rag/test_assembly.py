"""Context assembly on the real fixture corpus: within the budget, neighbours merged,
near-duplicates dropped, and every passage cited at its own document and chunk."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from app.chat.question import Question
from app.components import Components
from app.rag.assembly import ContextAssembler, join_overlapping
from app.rag.retrieval import Retriever, citations
from app.store.chunk_texts import chunks_around
from app.store.vectors import Hit

QUESTION = "Which port does the widget server listen on, and where is it configured?"


def retriever(components: Components, **rag: object) -> Retriever:
    settings = components.settings.rag.model_copy(update=rag)
    return Retriever.configured(
        settings,
        components.embedder,
        components.vectors,
        components.db,
        components.settings.vectors.collection,
        data_dir=None,
    )


def tokens(components: Components, hits: list[Hit]) -> int:
    return sum(components.embedder.count_tokens([h.text for h in hits]))


def test_passages_fit_the_budget_and_grow_with_it(components: Components) -> None:
    small = asyncio.run(retriever(components, context_tokens=120).context(QUESTION))
    large = asyncio.run(retriever(components, context_tokens=900).context(QUESTION))
    # The best hit always makes a passage; everything else must fit.
    assert len(small) == 1 or tokens(components, small) <= 120
    assert tokens(components, large) <= 900
    assert tokens(components, large) > tokens(components, small)
    assert "7421" in "\n".join(h.text for h in large)


def test_a_widened_passage_is_its_document_s_own_neighbouring_chunks(
    components: Components,
) -> None:
    hits = asyncio.run(retriever(components, context_tokens=900).context(QUESTION))
    widened = [h for h in hits if len(h.metadata["ords"]) > 1]
    assert widened, "with room to spare, a passage takes in its neighbours"
    for hit in hits:
        ords = hit.metadata["ords"]
        assert ords == list(range(ords[0], ords[-1] + 1))  # contiguous
        stored = chunks_around(components.db, hit.metadata["document_id"], ords[0], ords[-1])
        by_ord = {c.ord: c for c in stored}
        for ord_ in ords:
            # Each chunk's last paragraph is in the passage (its first may be the overlap).
            assert by_ord[ord_].text.split("\n\n")[-1] in hit.text
    # Citations number the passages and open each at its first chunk, in its document.
    for citation, hit in zip(citations(hits), hits, strict=True):
        assert citation.document_id == hit.metadata["document_id"]
        assert citation.chunk == hit.metadata["ords"][0]
        assert citation.source == hit.metadata["source"]


def test_adjacent_hits_merge_and_near_duplicates_drop(components: Components) -> None:
    found = retriever(components, context_tokens=0).search_sync(QUESTION, k=10)
    best = found[0]
    doc, ord_ = best.metadata["document_id"], best.metadata["ord"]
    neighbours = chunks_around(components.db, doc, ord_ - 1, ord_ + 1)
    assert len(neighbours) >= 2, "the best chunk has a neighbour in its document"
    other = next(c for c in neighbours if c.ord != ord_)
    adjacent = replace(
        best, id=other.id, text=other.text, metadata={**best.metadata, "ord": other.ord}
    )
    copy = replace(best, id="copy", metadata={**best.metadata, "document_id": "elsewhere"})
    assembler = ContextAssembler(
        None, components.embedder.count_tokens, budget=2000, max_passages=4
    )
    passages = assembler.assemble([best, copy, adjacent])
    assert len(passages) == 1  # the copy dropped, the neighbour merged
    assert passages[0].metadata["ords"] == sorted([ord_, other.ord])
    assert best.text.split("\n\n")[-1] in passages[0].text
    assert other.text.split("\n\n")[-1] in passages[0].text


def test_overlapping_chunks_are_joined_without_the_repeat() -> None:
    first = "Alpha paragraph.\n\nBeta paragraph.\n\nGamma paragraph."
    second = "Beta paragraph.\n\nGamma paragraph.\n\nDelta paragraph."
    assert join_overlapping(first, second) == (
        "Alpha paragraph.\n\nBeta paragraph.\n\nGamma paragraph.\n\nDelta paragraph."
    )
    assert join_overlapping("One.", "Two.") == "One.\n\nTwo."
    # A paragraph split between chunks: the repeated sentences are inside it, joined by
    # a space or a wrapped line's break (not blank lines), and written once.
    first = "Intro.\n\nThe key is written to a file. The\nsource stores the key's name;"
    second = "The\nsource stores the key's name; git's messages are scrubbed.\n\nNext."
    assert join_overlapping(first, second) == (
        "Intro.\n\nThe key is written to a file. The\nsource stores the key's name; "
        "git's messages are scrubbed.\n\nNext."
    )
    # A chance repeat of a word is no overlap.
    assert join_overlapping("Run it now", "now is the time.") == "Run it now\n\nnow is the time."


def test_the_chat_service_cites_the_assembled_passages(components: Components) -> None:
    async def opened() -> tuple[list[dict[str, object]], list[Hit], str]:
        answer = await components.chat.open(Question(QUESTION, store=False))
        try:
            assert answer.prompt is not None
            return [c.as_dict() for c in answer.started.citations], answer.hits, answer.prompt.text
        finally:
            await answer.cancel()

    cited, hits, prompt = asyncio.run(opened())
    assert len(cited) == len(hits)
    for citation, hit in zip(cited, hits, strict=True):
        assert citation["source"] == hit.metadata["source"]
        assert hit.text.split("\n\n")[0][:80] in prompt
