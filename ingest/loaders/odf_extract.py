"""OpenDocument text (.odt) as sections, read from its content.xml with lxml: `text:h`
starts a section of its outline level; lists become "- item" lines, a table one
paragraph with a row per line. Part of the office extraction child (office_extract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from typing import TYPE_CHECKING, Any

from ingest.loaders.blocks import list_text

if TYPE_CHECKING:
    from ingest.loaders.office_extract import Block

_ODF = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
# Elements whose text is not the document's running text.
_ODF_SKIPPED = {
    f"{{{_ODF['text']}}}{name}"
    for name in ("note", "tracked-changes", "sequence-decls", "table-of-content", "index-title")
} | {"{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}frame"}


def odt(data: bytes) -> tuple[str, Iterator[Block]]:
    import zipfile

    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    with zipfile.ZipFile(BytesIO(data)) as package:
        content = etree.fromstring(package.read("content.xml"), parser)
        names = set(package.namelist())
        meta = etree.fromstring(package.read("meta.xml"), parser) if "meta.xml" in names else None
    title = ""
    if meta is not None:
        found = meta.find(".//dc:title", _ODF)
        title = (found.text or "") if found is not None else ""
    body = content.find("office:body/office:text", _ODF)
    if body is None:
        raise ValueError("no text body (not a text document)")
    return title, _odf_blocks(body)


def _odf_blocks(element: Any) -> Iterator[Block]:
    t, tb = f"{{{_ODF['text']}}}", f"{{{_ODF['table']}}}"
    for child in element:
        tag = child.tag
        if tag in _ODF_SKIPPED:
            continue
        if tag == f"{t}h":
            level = child.get(f"{t}outline-level") or "1"
            yield "heading", _odf_text(child), int(level) if level.isdigit() else 1
        elif tag == f"{t}p":
            yield "text", _odf_text(child), 0
        elif tag == f"{t}list":
            items = [_odf_item(item) for item in child.iter(f"{t}list-item")]
            yield "text", list_text([i for i in items if i], ordered=False), 0
        elif tag == f"{tb}table":
            rows = []
            for row in child.iter(f"{tb}table-row"):
                cells = [
                    " ".join(_odf_text(p) for p in cell.iter(f"{t}p", f"{t}h")).strip()
                    for cell in row.iter(f"{tb}table-cell")
                ]
                if any(cells):
                    rows.append(" | ".join(" ".join(c.split()) for c in cells))
            yield "text", "\n".join(rows), 0
        else:  # text:section, soft page breaks and other containers
            yield from _odf_blocks(child)


def _odf_item(item: Any) -> str:
    """A list item's own paragraphs (a nested list's items are read as items of their own)."""
    t = f"{{{_ODF['text']}}}"
    return " ".join(" ".join(_odf_text(p).split()) for p in item if p.tag in (f"{t}p", f"{t}h"))


def _odf_text(element: Any) -> str:
    """An ODF paragraph's text: spaces (text:s), tabs and line breaks as characters."""
    t = f"{{{_ODF['text']}}}"
    parts = [element.text or ""]
    for child in element:
        if child.tag == f"{t}s":
            parts.append(" " * int(child.get(f"{t}c") or "1"))
        elif child.tag == f"{t}tab":
            parts.append("\t")
        elif child.tag == f"{t}line-break":
            parts.append("\n")
        elif child.tag not in _ODF_SKIPPED:
            parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)
