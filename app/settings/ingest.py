"""How documents get in: chunk size, limits on what is read, what is left out, and when a
run stops before it writes (ingest).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.settings.validation import SECTION_CONFIG


class IngestSettings(BaseModel):
    """How documents are cut into chunks."""

    model_config = SECTION_CONFIG

    chunk_tokens: int = Field(
        200,
        ge=32,
        description="Target chunk size in tokens of the embedding model (all-MiniLM "
        "embeds at most 256 word pieces; text past that is ignored).",
    )
    chunk_overlap: int = Field(
        32, ge=0, description="Tokens of the previous chunk repeated at the start of the next."
    )
    overlap_stages: bool = Field(
        True,
        description="Run loading and chunking, embedding, and storing at the same time, "
        "in threads joined by short queues, so the slowest stage (embedding) sets the pace; "
        "files are still written in folder order, as a sequential run writes them. false: "
        "one file at a time through every stage (the path before 2026-12).",
    )
    write_chunks: int = Field(
        256,
        ge=1,
        description="Chunks of new file versions written to the stores in one go (each "
        "step of the kill-safe order for a few files at once): a call to Chroma costs "
        "~20 ms whatever it holds. A run killed during a write redoes its files. 1: one "
        "file at a time.",
    )
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused.")
    max_file_chars: int = Field(
        5_000_000,
        ge=1000,
        description="Most characters of text taken from one file (about 1,500 dense PDF "
        "pages, 10,000 chunks); the rest is cut and the run's report says so (a limits "
        "finding). A small compressed PDF can hold tens of megabytes of text.",
    )
    max_page_chars: int = Field(
        100_000,
        ge=1000,
        description="Most characters of text taken from one PDF page (a dense page holds "
        "about 5,000); the rest of the page is cut, with a limits finding.",
    )
    extract_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds the text extraction of one PDF or office document may take "
        "(it runs in a child process, stopped when the time is up): the pages read by then "
        "are kept, with a limits finding; a file with none read is skipped with a load error.",
    )
    ocr: bool = Field(
        True,
        description="Read PDF pages that have no text layer (scans) with OCR: Debian's "
        "tesseract-ocr, pages rasterised by pdftoppm (poppler-utils). Where tesseract is "
        "not installed, such pages are reported (a warning finding), not read.",
    )
    ocr_languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$",
        description="Tesseract languages for OCR, joined by + (e.g. eng+deu); each needs "
        "its tesseract-ocr-LANG package.",
    )
    ocr_page_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds the OCR of one page may take; a page over it is left out with "
        "a warning finding. The whole file stays within ingest.extract_timeout_s.",
    )
    exclude: list[str] = Field(
        default_factory=lambda: ["_sources/*", "_static/*", "_images/*", "node_modules/*"],
        description="Glob patterns of paths (relative to the ingested folder, matched at "
        "any depth) to leave out. The defaults skip build artefacts such as Sphinx's copies "
        "of the page sources.",
    )
    mass_change_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Largest share of a collection's documents one ingest run may delete "
        "(files gone) or replace (files changed) without --allow-mass-change; a run that "
        "would do more stops before it writes anything and says how many. 1: never stop.",
    )
    mass_change_min_documents: int = Field(
        3,
        ge=1,
        description="A run that deletes or replaces fewer documents than this is never "
        "stopped by mass_change_share (editing one file of a small collection is no mass "
        "change).",
    )
