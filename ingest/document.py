"""The structured text a loader produces, before chunking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExtractLimits:
    """How much one file may cost to turn into text (ingest.max_* settings): a small
    compressed PDF can expand to tens of megabytes of text, and every character is
    chunked and embedded. What passes a bound is cut and reported, never silently kept."""

    max_file_chars: int = 5_000_000
    max_page_chars: int = 100_000  # PDF pages
    timeout_s: float = 60.0  # PDF and office extraction, which run in a child process
    # OCR of PDF pages without a text layer (tesseract), and its budget per page.
    ocr: bool = True
    ocr_languages: str = "eng"
    ocr_page_timeout_s: float = 30.0


class LoadError(Exception):
    """A file that cannot be turned into text; the message is the reason shown to the user."""


@dataclass
class Section:
    """A run of paragraphs under one heading ("" for text before any heading)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    # Heading level (1 for the top); 0 for text before any heading or formats without levels.
    level: int = 0


@dataclass
class LoadedDocument:
    """What a loader extracts from one file: a title and its sections in reading order."""

    title: str
    sections: list[Section]
    # Soft findings worth reporting (the file is still indexed), e.g. "3 pages had no text".
    warnings: list[str] = field(default_factory=list)
    # Where a bound of ExtractLimits cut the text (reported as "limits" findings).
    limits: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All paragraphs joined, for hashing and size checks."""
        return "\n\n".join(p for s in self.sections for p in s.paragraphs)
