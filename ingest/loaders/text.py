"""Plain-text loader: paragraphs separated by blank lines, under one untitled section."""

from __future__ import annotations

import re

from ingest.document import LoadedDocument, Section

_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def split_paragraphs(text: str) -> list[str]:
    """Split text on blank lines into stripped, non-empty paragraphs."""
    parts = (p.strip() for p in _BLANK_LINES.split(text))
    return ["\n".join(line.rstrip() for line in p.splitlines()) for p in parts if p]


def load(text: str, stem: str) -> LoadedDocument:
    """Turn plain text into one section of paragraphs, titled after the file name."""
    title = " ".join(stem.replace("_", " ").replace("-", " ").split()) or stem
    section = Section(heading="", paragraphs=split_paragraphs(text))
    return LoadedDocument(title=title, sections=[section])
