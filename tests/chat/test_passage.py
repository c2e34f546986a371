"""The passage shown in place of an unsupported answer: where it starts and ends, and
the sentences marked, with the real embedding model, on docchat's own docs."""

from __future__ import annotations

from pathlib import Path

from app.chat.passage import (
    PASSAGE_CHARS,
    PASSAGE_INTRO,
    UNSURE_INTRO,
    closest_passage,
    readable,
)
from app.store.vectors import Hit
from tests.conftest import Models

MODELS_PAGE = (Path(__file__).parents[2] / "docs" / "models.md").read_text()


def hit(text: str) -> Hit:
    return Hit("c1", text, 0.5, {"source": "docs/models.md"})


def quoted_text(shown: str) -> str:
    """The passage itself: the quote's lines without their '> '."""
    body = shown.split(":\n\n", 1)[1]
    return "\n".join(line.removeprefix(">").removeprefix(" ") for line in body.splitlines())


def test_a_passage_cut_mid_token_starts_where_a_reader_can(models: Models) -> None:
    """The report: for "How do I roll back a chat model after a bad upgrade?" the passage
    began `false}' …/api/admin/models/NAME/activate`, inside a code block, and the line
    that answers sat in its middle."""
    start = MODELS_PAGE.index("""false}' …/api/admin/models/NAME/activate""")
    chunk = MODELS_PAGE[start : start + 1400]
    shown = closest_passage(
        [hit(chunk)], "How do I roll back a chat model after a bad upgrade?", models.embedder.embed
    )
    assert shown.startswith(PASSAGE_INTRO)
    text = quoted_text(shown)
    assert not text.startswith("false}'")
    assert text.startswith("## Rolling back")  # the section that answers, from its heading
    assert "docchat models rollback" in text
    assert text.count("```") % 2 == 0  # no code block left open or closed twice
    # That section alone (not the next, "Lineage"), a sentence of it in bold.
    assert "Lineage" not in text
    marked = text.split("**")[1]
    assert "roll" in marked.lower()
    assert shown.startswith(
        f"{PASSAGE_INTRO}, from docs/models.md [1] (the closest sentences in bold):\n\n> "
    )  # cited in the lead-in


def test_a_passage_shown_for_the_models_doubt_says_so() -> None:
    """Flagged only by the model's own confidence, the answer may be in the passage in
    so many words: the lead-in does not claim the documentation fails to say it."""
    chunk = "The API key goes in the X-API-Key header."
    doubted = closest_passage([hit(chunk)], unsure=True)
    assert doubted.startswith(f"{UNSURE_INTRO}, from docs/models.md [1]:")
    assert "so many words" not in doubted
    assert quoted_text(doubted) == chunk
    assert closest_passage([hit(chunk)]).startswith(PASSAGE_INTRO)


def test_a_heading_as_the_loader_leaves_it_is_found_too(models: Models) -> None:
    """The Markdown loader stores headings as bare lines and code without its fences:
    "Rolling back" is still where the passage starts."""
    start = MODELS_PAGE.index("`GET /api/admin/models` and")
    chunk = MODELS_PAGE[start : start + 1400].replace("## ", "").replace("```sh\n", "")
    chunk = chunk.replace("```\n", "").replace("`", "")
    shown = closest_passage(
        [hit(chunk)], "How do I roll back a chat model after a bad upgrade?", models.embedder.embed
    )
    text = quoted_text(shown)
    assert text.startswith("#### Rolling back\n\ndocchat models rollback")
    assert "Lineage" not in text


def test_without_a_question_the_passage_still_starts_and_ends_cleanly() -> None:
    chunk = "ing the widget, then restart it.\n\nWidgets are created with POST /v2/widgets."
    assert readable(chunk) == "Widgets are created with POST /v2/widgets."
    # A block cut mid-sentence keeps the sentences that start in it.
    mid = "the server. The port is 7421 by default.\n\nSet it with --port."
    assert readable(mid).startswith("The port is 7421")
    # Cut inside a code block: the block is closed again, the cut said.
    long = "Run this:\n\n```sh\n" + "echo step\n" * 200 + "```\n"
    shown = readable(long)
    assert len(shown) < PASSAGE_CHARS + 20
    assert shown.count("```") == 2
    assert shown.endswith("```\n…")
    # A long paragraph is cut at its last sentence or clause end, not only at a full stop.
    clauses = "Set it with one flag. " + "x " * 300 + "With stream false the answer is JSON:"
    cut = readable(clauses + " a conversation_id, an answer and sources " * 20)
    assert cut.endswith("the answer is JSON: …")
    # Text with no start at all is shown as it is rather than dropped.
    assert readable("the end of a sentence.") == "the end of a sentence."
    # A command is a start, lowercase or not; the tail of a cut token is not.
    assert readable("docchat config show [--json]\n\nPrints every setting.").startswith(
        "docchat config show"
    )
    assert readable("false}' …/api/admin/models/NAME/activate\n\nThen poll.") == "Then poll."
    # A chunk that opens inside a wrapped sentence starts at the next sentence, within
    # the paragraph (a chunk keeps a split paragraph whole); a lowercase word alone on
    # the first line is not taken for a command.
    wrapped = (
        "only\na SIGKILL in the middle of a fetch can leave it behind. The\n"
        "source stores the key's name; git's messages are scrubbed.\n\nA key missing fails."
    )
    assert readable(wrapped).startswith("The\nsource stores the key's name;")
    assert readable("pip install docchat\ndocchat ingest docs\n\nThen serve.").startswith("pip")
    assert readable("from openai import OpenAI\n\nclient = OpenAI()").startswith("from openai")
    # Command output is no paragraph to look for a sentence in.
    output = (
        "$ git ls-tree 2d9263\n100644 blob 8d1453    .gitignore\n...\n100644 blob 4b9458    f\n..."
    )
    assert readable(output) == output


def test_a_sentence_wrapped_over_lines_is_bold_line_by_line(models: Models) -> None:
    text = (
        "Widgets are stored in the widget database.\n\nThe server listens on port 7421 by\n"
        "default, and the port is set with --port. Logs go to stderr."
    )
    shown = quoted_text(closest_passage([hit(text)], "Which port?", models.embedder.embed))
    assert "**The server listens on port 7421 by**\n**default, and the port is set with" in shown
    assert "**Widgets" not in shown


def test_code_tables_and_headings_are_never_marked(models: Models) -> None:
    text = (
        "# Ports\n\nThe server listens on port 7421 by default. Logs go to stderr.\n\n"
        "```sh\ndocchat serve --port 7421\n```\n\n| setting | default |\n| --- | --- |\n"
        "| port | 7421 |"
    )
    shown = quoted_text(closest_passage([hit(text)], "Which port?", models.embedder.embed))
    assert "**The server listens on port 7421 by default.**" in shown
    assert "docchat serve --port 7421\n" in shown  # code as written
    assert "| port | 7421 |" in shown
    assert "# Ports" in shown
