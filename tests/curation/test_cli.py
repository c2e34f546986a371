"""`docchat curate` and `docchat dataset` as real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_docchat
from tests.curation.conftest import SECOND, Rated


def test_curate_and_dataset_commands(rated: Rated, tmp_path: Path) -> None:
    env = rated.env()

    def docchat(*args: str) -> subprocess.CompletedProcess[str]:
        return run_docchat(*args, env=env)

    accepted = docchat("curate", "accept", rated.second["message_id"], "--json")
    assert accepted.returncode == 0, accepted.stderr
    example = json.loads(accepted.stdout)
    assert (example["question"], example["origin"]) == (SECOND, "feedback")

    corrected = docchat(
        "curate", "correct", rated.second["message_id"], "--answer", "Run widgetctl --version."
    )
    assert corrected.returncode == 0, corrected.stderr
    assert example["id"] in corrected.stdout
    assert "Run widgetctl --version." in corrected.stdout

    added = docchat(
        "curate",
        "add",
        "--question",
        "Which [bold]file[/]?",
        "--answer",
        "widget.toml",
        "--source",
        "guide.md",
    )
    assert added.returncode == 0, added.stderr
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"question": "Imported?", "answer": "Yes."}) + "\n")
    imported = docchat("curate", "add", "--file", str(jsonl))
    assert imported.returncode == 0, imported.stderr
    assert "imported 1" in imported.stdout
    neither = docchat("curate", "add")
    assert neither.returncode == 1
    assert "--question" in neither.stderr

    listed = docchat("curate", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Which [bold]file[/]?" in listed.stdout  # user text, not markup
    shown = docchat("curate", "show", example["id"], "--json")
    assert json.loads(shown.stdout)["answer"] == "Run widgetctl --version."
    assert docchat("curate", "show", "nope").returncode == 1
    checked = docchat("curate", "check")
    assert checked.returncode == 0, checked.stdout
    assert "0 stale" in checked.stdout

    built = docchat("dataset", "build", "cli-a", "--json")
    assert built.returncode == 0, built.stderr
    info = json.loads(built.stdout)
    assert info["file_ok"]
    assert info["n_examples"] >= 3
    again = docchat("dataset", "build", "cli-a")
    assert again.returncode == 1
    assert "immutable" in again.stderr

    dropped = docchat("curate", "drop", example["id"])
    assert dropped.returncode == 0, dropped.stderr
    assert docchat("dataset", "build", "cli-b").returncode == 0
    diff = docchat("dataset", "diff", "cli-a", "cli-b")
    assert diff.returncode == 0, diff.stderr
    assert f"- {example['id']}" in diff.stdout
    assert "1 removed" in diff.stdout

    listing = docchat("dataset", "list")
    assert "cli-a" in listing.stdout
    assert "cli-b" in listing.stdout
    show = docchat("dataset", "show", "cli-a", "--json")
    assert json.loads(show.stdout)["sha256"] == info["sha256"]

    out = tmp_path / "train.jsonl"
    exported = docchat("dataset", "export", "cli-a", "--split", "all", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == info["n_examples"]
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)
    stdout = docchat("dataset", "export", "cli-a", "--format", "jsonl", "--split", "held-out")
    assert len(stdout.stdout.splitlines()) == info["n_held_out"]
    bad = docchat("dataset", "export", "cli-a", "--format", "csv")
    assert bad.returncode == 2


def test_a_dataset_name_with_a_trailing_newline_is_refused(rated: Rated) -> None:
    """Before issue #22's fix, `docchat dataset build $'cli-nl\\n'` built
    datasets/cli-nl\\n.jsonl."""
    env = rated.env()
    run_docchat("curate", "accept", rated.first["message_id"], env=env)  # maybe done already
    refused = run_docchat("dataset", "build", "cli-nl\n", env=env)
    assert refused.returncode == 1, refused.stdout
    assert "name" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not list((rated.settings.data_dir / "datasets").glob("cli-nl*"))
