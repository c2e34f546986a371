"""Markdown loader: front matter, headings, paragraphs, code blocks and lists, via markdown-it."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from ingest.document import LoadedDocument, Section
from ingest.loaders.blocks import list_text
from ingest.loaders.html import fragment_text

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_YAML_KEY = re.compile(r"[A-Za-z_][\w-]*[ \t]*:")
_TITLE_KEY = re.compile(r"^title[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_LISTS = ("bullet_list", "ordered_list")


def load(text: str, stem: str) -> LoadedDocument:
    """Turn Markdown into sections split at headings, titled from front matter or the first H1."""
    body, fm_title = _split_front_matter(text)
    sections = [Section(heading="")]
    _walk(SyntaxTreeNode(_PARSER.parse(body)), sections)
    sections = [s for s in sections if s.heading or s.paragraphs]
    h1 = next((s.heading for s in sections if s.level == 1 and s.heading), "")
    return LoadedDocument(title=fm_title or h1 or stem, sections=sections)


def _split_front_matter(text: str) -> tuple[str, str]:
    """Remove a YAML front matter block; return the rest and the block's title ("" if none)."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return text, ""
    block = match.group(1)
    first = next((line for line in block.splitlines() if line.strip()), "")
    # A leading "---" may also be a thematic break: only a block of "key:" lines is front matter.
    if first and not _YAML_KEY.match(first):
        return text, ""
    title_match = _TITLE_KEY.search(block)
    return text[match.end() :], _yaml_scalar(title_match.group(1)) if title_match else ""


def _yaml_scalar(value: str) -> str:
    """The string a one-line YAML scalar stands for (quoted or plain, trailing comment dropped)."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'").strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\").strip()
    return re.split(r"\s#", value, maxsplit=1)[0].strip()


def _walk(node: SyntaxTreeNode, sections: list[Section]) -> None:
    """Add the blocks under node to sections, starting a new section at each heading."""
    for child in node.children:
        if child.type == "heading":
            heading = " ".join(_inline(child).split())
            sections.append(Section(heading=heading, level=int(child.tag[1])))
        elif child.type == "blockquote":
            _walk(child, sections)
        elif text := _block_text(child):
            sections[-1].paragraphs.append(text)


def _block_text(node: SyntaxTreeNode) -> str:
    """Plain text of one block; code stays verbatim, a whole list is one text."""
    if node.type in ("fence", "code_block"):
        return node.content.strip("\n")
    if node.type in ("paragraph", "heading"):
        return _inline(node).strip()
    if node.type in _LISTS:
        return _list_text(node)
    if node.type == "table":
        return _table_text(node)
    if node.type == "html_block":
        return fragment_text(node.content)
    if node.type == "hr":
        return ""
    return "\n".join(t for c in node.children if (t := _block_text(c)))


def _inline(node: SyntaxTreeNode) -> str:
    """Text of inline markup: link and image markup dropped (their text kept), raw HTML dropped."""
    parts: list[str] = []
    for child in node.children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        else:  # links, emphasis, images (alt text); raw HTML tags have no children: dropped
            parts.append(_inline(child))
    return "".join(parts)


def _list_text(node: SyntaxTreeNode) -> str:
    """A list as lines "- item" / "1. item", nested lists indented under their item."""
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 1
    items = ["\n".join(t for c in item.children if (t := _block_text(c))) for item in node.children]
    return list_text(items, ordered=ordered, start=start)


def _table_text(node: SyntaxTreeNode) -> str:
    """One line per table row, cells joined with " | "."""
    rows: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop(0)
        if current.type == "tr":
            rows.append(" | ".join(" ".join(_inline(cell).split()) for cell in current.children))
        else:
            stack[:0] = current.children
    return "\n".join(rows)
