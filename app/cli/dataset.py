"""`docchat dataset`: immutable snapshots of the curated examples, and their exports."""

from __future__ import annotations

import json
import os
import sys
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.common import console, say
from app.cli.curate import store

app = typer.Typer(no_args_is_help=True)
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class FormatChoice(StrEnum):
    """What `dataset export --format` takes."""

    openai_chat = "openai-chat"
    jsonl = "jsonl"


class SplitChoice(StrEnum):
    """What `dataset export --split` takes."""

    train = "train"
    held_out = "held-out"
    all = "all"


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _show(info: dict[str, Any]) -> None:
    for key, value in info.items():
        say(f"{key}: {value}")


@app.command()
def build(
    name: Annotated[str, typer.Argument(help="A new name: datasets are never rebuilt.")],
    collection: Annotated[
        str | None, typer.Option(help="Only this collection's examples (default: all).")
    ] = None,
    held_out: Annotated[
        float, typer.Option(help="Share held out for evaluation.", min=0.0, max=0.99)
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the train / held-out split.")] = 0,
    created_by: Annotated[str, typer.Option(help="Who built it (recorded).")] = "cli",
    as_json: AsJson = False,
) -> None:
    """Snapshot the active curated examples as dataset NAME, with a fixed split.

    Example: docchat dataset build support-2026-12 --held-out 0.2
    """
    from app.curation import datasets

    with store() as (settings, session):
        built = datasets.build(
            session,
            settings.data_dir,
            name,
            collection=collection,
            held_out=held_out,
            seed=seed,
            created_by=created_by,
        )
        info = built.info()
    if as_json:
        _json(info)
        return
    say(
        f"built dataset {name}: {built.n_examples} examples "
        f"({built.n_train} train, {built.n_held_out} held out), sha256 {built.sha256}"
    )
    say(f"file: {built.path}")


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every dataset, newest first."""
    from app.curation import datasets

    with store() as (settings, session):
        infos = [s.info() for s in datasets.listed(session, settings.data_dir)]
    if as_json:
        _json(infos)
        return
    if not infos:
        console.print("no datasets yet: docchat dataset build NAME")
        return
    table = Table(title="Datasets, newest first")
    for column in ("name", "examples", "train", "held out", "sha256", "created", "file"):
        table.add_column(column)
    for i in infos:
        table.add_row(
            i["name"],
            str(i["n_examples"]),
            str(i["n_train"]),
            str(i["n_held_out"]),
            i["sha256"][:12],
            i["created_at"][:16].replace("T", " "),
            "ok" if i["file_ok"] else "missing or changed",
        )
    console.print(table)


@app.command()
def show(name: str, as_json: AsJson = False) -> None:
    """A dataset's hash, counts, split and file (and whether the file still matches)."""
    from app.curation import datasets

    with store() as (settings, session):
        info = datasets.load(session, settings.data_dir, name).info()
    if as_json:
        _json(info)
    else:
        _show(info)


@app.command()
def diff(a: str, b: str, as_json: AsJson = False) -> None:
    """What changed from dataset A to dataset B: examples added, removed and changed.

    Example: docchat dataset diff support-2026-11 support-2026-12
    """
    from app.curation import datasets

    with store() as (_settings, session):
        found = datasets.diff(session, a, b)
    if as_json:
        _json(found)
        return
    for kind, mark in (("added", "+"), ("removed", "-")):
        for row in found[kind]:
            say(f"{mark} {row['id']} {row['question']}")
    for row in found["changed"]:
        say(f"~ {row['id']} {row['question']} ({', '.join(row['fields'])})")
    say(
        f"{len(found['added'])} added, {len(found['removed'])} removed, "
        f"{len(found['changed'])} changed, {found['unchanged']} unchanged"
    )


@app.command()
def export(
    name: str,
    format: Annotated[FormatChoice, typer.Option(help="openai-chat or jsonl (raw rows).")] = (
        FormatChoice.openai_chat
    ),
    split: Annotated[SplitChoice, typer.Option(help="train, held-out or all.")] = SplitChoice.all,
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
) -> None:
    """Export a dataset as JSONL: openai-chat is what OpenAI fine-tuning and TRL read.

    Example: docchat dataset export support-2026-12 --split train --out train.jsonl
    """
    from app.curation import datasets, export

    with store() as (settings, session):
        snapshot = datasets.load(session, settings.data_dir, name)
    lines = export.lines(snapshot, format.value, split.value)
    if out is None:
        sys.stdout.writelines(lines)
        return
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex}.partial")
    try:
        with partial.open("w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    say(f"wrote {len(snapshot.split(split.value))} rows to {out}")


@app.command()
def synth(
    name: Annotated[str, typer.Argument(help="A new name: datasets are never rebuilt.")],
    collection: Annotated[str, typer.Option(help="The collection whose passages to ask about.")],
    questions_per_passage: Annotated[
        int, typer.Option(min=1, max=5, help="Questions the model writes per passage.")
    ] = 1,
    distractors: Annotated[
        int, typer.Option(min=0, max=10, help="Other passages beside the one that answers.")
    ] = 3,
    no_oracle_share: Annotated[
        float,
        typer.Option(min=0.0, max=0.99, help="Share of examples without the answering passage."),
    ] = 0.2,
    held_out: Annotated[
        float, typer.Option(help="Share held out for evaluation.", min=0.0, max=0.99)
    ] = 0.2,
    passages: Annotated[
        int | None, typer.Option(min=1, help="Passages to sample (default: all of them).")
    ] = None,
    max_tokens: Annotated[
        int, typer.Option(min=64, help="Tokens per example at most (distractors dropped).")
    ] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the sample, excerpts and split.")] = 0,
    created_by: Annotated[str, typer.Option(help="Who built it (recorded).")] = "cli",
    as_json: AsJson = False,
) -> None:
    """Build dataset NAME from a collection's own passages (retrieval-augmented).

    The active chat model writes a question and a short answer per sampled passage;
    junk is dropped (not a question, answer not grounded in the passage). Each example
    holds the passage among distractors, as the chat service's prompt would, and the
    answer cites it; a share leaves it out and declines. What the model wrote is
    cached: a rerun asks only about passages it has not seen.

    Example: docchat dataset synth docs-raft --collection docs --passages 60
    """
    from app.cli.synthesis import synthesize
    from app.curation.raft import Recipe

    recipe = Recipe(
        questions_per_passage=questions_per_passage,
        distractors=distractors,
        no_oracle_share=no_oracle_share,
        held_out=held_out,
        seed=seed,
        passages=passages,
        max_tokens=max_tokens,
    )
    built, report = synthesize(name, collection, recipe, created_by)
    if as_json:
        _json({**built.info(), "synthesis": report})
        return
    say(
        f"built dataset {name}: {built.n_examples} examples ({built.n_train} train, "
        f"{built.n_held_out} held out), sha256 {built.sha256}"
    )
    say("questions: " + ", ".join(f"{k} {v}" for k, v in report.items()))
    say(f"file: {built.path}")
