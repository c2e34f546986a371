"""The chunker: paragraphs too long for one chunk are split (sentences, then lines,
then words), and the pieces of one paragraph stay one paragraph in the chunk text.

They used to be joined by blank lines, so a split paragraph reached the prompt and the
passage shown in place of an unsupported answer as a column of one-sentence
"paragraphs" ("The\\nsource stores the key's name;\\n\\ngit's messages are scrubbed")."""

from __future__ import annotations

import pytest

from ingest.chunking import Chunker
from ingest.document import LoadedDocument, Section
from tests.conftest import Models

# A paragraph of wrapped lines, well over a 64-token budget.
LONG = (
    "For each fetch the key is written to a file of mode 0600 in a fresh private folder\n"
    "of the temporary directory, and removed when git ends, whatever the outcome; only\n"
    "a SIGKILL in the middle of a fetch can leave it behind. The\n"
    "source stores the key's name; git's messages are scrubbed of the key's lines. The\n"
    "server's host key is checked: against known_hosts when the source gives it, else the\n"
    "key seen at the first sync is kept and a different one later fails the sync. A key\n"
    "missing from the settings fails that source with a message naming the key."
)
SHORT = "When the server refuses the key, the source's last error says so."
CODE = "\n".join(f"    step_{i} = run('job {i}', retries=3, timeout=30)" for i in range(12))
RUN_ON = " ".join(f"word{i}" for i in range(200))


@pytest.fixture
def chunker(models: Models) -> Chunker:
    return Chunker(models.embedder.count_tokens, max_tokens=64, overlap=16)


def chunks_of(chunker: Chunker, *paragraphs: str) -> list[str]:
    doc = LoadedDocument("Sources", [Section("Keys", list(paragraphs))])
    return [c.text for c in chunker.chunk(doc)]


def test_a_split_paragraph_reads_as_written(chunker: Chunker) -> None:
    chunks = chunks_of(chunker, LONG, SHORT)
    document = f"{LONG}\n\n{SHORT}"
    assert len(chunks) >= 3, "the long paragraph must need several chunks"
    for text in chunks:
        # Each chunk is a stretch of the document as written: no blank line between the
        # sentences of one paragraph, the real paragraph break kept.
        assert text in document
    assert any(text.endswith(f"the key.\n\n{SHORT}") for text in chunks)
    # Overlap: a chunk after the first repeats the end of the one before.
    assert any(chunks[i][-20:] in chunks[i + 1] for i in range(len(chunks) - 1))


def test_a_long_code_block_is_split_at_its_lines_with_their_indentation(
    chunker: Chunker,
) -> None:
    chunks = chunks_of(chunker, CODE)
    assert len(chunks) >= 2
    for text in chunks:
        assert text in CODE  # one line under the other, as written
        # Indented as written (but the paragraph's own first line: paragraphs are stripped).
        lines = text.split("\n")
        assert all(line.startswith("    step_") for line in lines if not line.startswith("step_0"))


def test_run_on_text_is_split_into_windows_of_words(chunker: Chunker) -> None:
    chunks = chunks_of(chunker, RUN_ON)
    assert len(chunks) >= 2
    assert all(text in RUN_ON for text in chunks)
    assert chunks[0].startswith("word0 word1")
    assert chunks[-1].endswith("word199")
