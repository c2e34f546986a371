"""reStructuredText loader: docutils' doctree walked section by section."""

from __future__ import annotations

import io
import re
import textwrap
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree

from ingest.document import LoadedDocument, Section
from ingest.loaders.blocks import list_text

_SETTINGS = {
    # Never print, never stop: problems become system_message nodes, which are dropped.
    "report_level": 5,
    "halt_level": 5,
    "traceback": False,
    # Untrusted input must not read local files or pass raw HTML through.
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "_disable_config": True,
    # Keep the top heading a section, so levels are simply the nesting depth.
    "doctitle_xform": False,
}
# Leftovers of unknown (Sphinx) roles: :ref:`Title <label>`, :py:func:`~a.b`.
_ROLE = re.compile(r"^:[\w.+-]+(?::[\w.+-]+)*:`(.*)`$", re.DOTALL)
_EXPLICIT_TARGET = re.compile(r"^(.+?)\s*<[^<>]+>$", re.DOTALL)
_ROLE_IN_TEXT = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`[^`]*`")
_BLANK_LINES = re.compile(r"\n\s*\n")
_DIRECTIVE = re.compile(r"^\.\.\s+([\w:.+-]+)::[ \t]*(.*)$")
_DROPPED = (nodes.comment, nodes.substitution_definition, nodes.pending, nodes.raw)
# Unknown directives whose body is not prose (lists of document names and the like).
_SKIPPED_DIRECTIVES = {"toctree", "autosummary"}


def load(text: str, stem: str) -> LoadedDocument:
    """Turn reST into sections; unknown Sphinx roles and directives degrade to plain text."""
    settings = {**_SETTINGS, "warning_stream": io.StringIO()}
    doctree = publish_doctree(text, settings_overrides=settings)
    _clean(doctree)
    sections = [Section(heading="")]
    _walk(doctree, 0, sections)
    sections = [s for s in sections if s.heading or s.paragraphs]
    first = next((s.heading for s in sections if s.heading), "")
    return LoadedDocument(title=str(doctree.get("title", "")) or first or stem, sections=sections)


def _clean(doctree: Any) -> None:
    """Drop docutils' error reports and invisible nodes, keeping what unknown markup said."""
    for node in list(doctree.findall(nodes.system_message)):
        recovered = _unknown_directive_text(node)
        if recovered:
            node.parent.replace(node, nodes.paragraph(text=recovered))
        else:
            node.parent.remove(node)
    for node in list(doctree.findall(nodes.problematic)):
        node.parent.replace(node, nodes.Text(_role_text(node.astext())))
    for node in list(doctree.findall(lambda n: isinstance(n, _DROPPED))):
        node.parent.remove(node)


def _unknown_directive_text(message: Any) -> str:
    """The arguments and body of an unknown (e.g. Sphinx) directive, as plain text."""
    if not message.children or not message[0].astext().startswith("Unknown directive type"):
        return ""
    source = next((c.astext() for c in message.children if isinstance(c, nodes.literal_block)), "")
    head, _, body = source.partition("\n")
    match = _DIRECTIVE.match(head)
    if match is None or match.group(1).split(":")[-1] in _SKIPPED_DIRECTIVES:
        return ""
    name, arguments = match.groups()
    body_lines = textwrap.dedent(body).strip("\n").splitlines()
    while body_lines and body_lines[0].startswith(":"):  # directive options
        body_lines.pop(0)
    text = "\n".join([f"{name} {arguments}".strip(), *body_lines])
    return _BLANK_LINES.sub("\n", _ROLE_IN_TEXT.sub(lambda m: _role_text(m.group(0)), text))


def _role_text(raw: str) -> str:
    """The readable part of an unknown role: :ref:`Title <label>` -> Title, :func:`~a.b` -> a.b."""
    match = _ROLE.match(raw)
    if match is None:
        return raw
    inner = match.group(1)
    explicit = _EXPLICIT_TARGET.match(inner)
    return (explicit.group(1) if explicit else inner).lstrip("~!")


def _walk(node: Any, depth: int, sections: list[Section]) -> None:
    """Add node's children to sections; each nested section becomes a Section of its own."""
    for child in node.children:
        if isinstance(child, nodes.section):
            title = next((c.astext() for c in child.children if isinstance(c, nodes.title)), "")
            sections.append(Section(heading=" ".join(title.split()), level=depth + 1))
            _walk(child, depth + 1, sections)
        elif isinstance(child, (nodes.title, nodes.subtitle, nodes.target)):
            continue
        elif isinstance(child, nodes.topic) and "contents" in child["classes"]:
            continue  # a generated table of contents
        elif isinstance(
            child,
            (
                nodes.Admonition,
                nodes.block_quote,
                nodes.container,
                nodes.compound,
                nodes.topic,
                nodes.sidebar,
            ),
        ):
            _walk(child, depth, sections)
        elif text := _body_text(child):
            sections[-1].paragraphs.append(text)


def _body_text(node: Any) -> str:
    """Text of one body element: lists as "- item" lines, tables as " | " rows."""
    if isinstance(node, (nodes.bullet_list, nodes.enumerated_list)):
        return _list_text(node)
    if isinstance(node, nodes.table):
        rows = [
            " | ".join(" ".join(e.astext().split()) for e in row.children)
            for row in node.findall(nodes.row)
        ]
        return "\n".join(rows)
    if isinstance(node, (nodes.literal_block, nodes.doctest_block)):
        return str(node.astext()).strip("\n")
    # Several paragraphs in one element (a definition, a field) stay one paragraph.
    return _BLANK_LINES.sub("\n", str(node.astext()).strip())


def _list_text(node: Any) -> str:
    """A list as lines "- item" / "1. item", nested lists indented under their item."""
    items = ["\n".join(t for c in item.children if (t := _body_text(c))) for item in node.children]
    ordered = isinstance(node, nodes.enumerated_list)
    return list_text(items, ordered=ordered, start=int(node.get("start", 1)))
