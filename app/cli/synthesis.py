"""`docchat dataset synth`: the chat model writes questions for a collection's passages;
the kept ones become a retrieval-augmented dataset (app/curation/raft.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.common import err, fail, load

if TYPE_CHECKING:
    from app.curation.datasets import Snapshot
    from app.curation.raft import Recipe


def synthesize(
    name: str, collection: str, recipe: Recipe, created_by: str
) -> tuple[Snapshot, dict[str, Any]]:
    """Generate (or take from the cache), judge, assemble and store; the dataset and
    what happened to the questions."""
    from app.components import active_model, load_embedder, load_model
    from app.curation import datasets, raft, synthesis
    from app.curation.errors import CurationError
    from app.llm.base import CannotChat
    from app.releases.errors import RegistryError
    from app.store.db import open_database

    try:
        recipe.check()
    except ValueError as exc:
        raise fail(str(exc)) from None
    settings = load()
    db = open_database(settings)
    try:
        with db.session() as session:
            datasets.check_new(session, name, recipe.held_out)
            everything = raft.collection_passages(session, collection)
        if not everything:
            raise CurationError(
                f"collection {collection!r} has no ingested passages of {raft.MIN_WORDS} "
                "words or more: ingest the documents first"
            )
        chosen = raft.sample(everything, recipe.passages, recipe.seed)
        try:
            entry = active_model(settings, db)
            engine = load_model(settings, entry)
        except (RegistryError, CannotChat) as exc:
            raise fail(str(exc)) from None
        try:
            embedder = load_embedder(settings)
            checks = synthesis.Checks(settings.rag.grounding_threshold, settings.rag.check_terms)
            cache = synthesis.Cache(
                synthesis.cache_path(settings.data_dir, engine.model_sha256, collection)
            )
            # On standard error: standard output carries --json.
            err.print(
                f"{len(chosen)} passages; the model's questions are kept in {cache.path}",
                markup=False,
                highlight=False,
            )
            judged, asked = _generate_and_judge(engine, chosen, recipe, cache, embedder, checks)
            rows, too_long = raft.examples(
                judged,
                everything,
                recipe,
                collection,
                lambda messages: engine.format(messages).n_tokens,
            )
        finally:
            engine.close()
        report = synthesis.summary([p for _, pairs in judged for p in pairs])
        report["asked"] = asked
        report["too long"] = too_long
        report["without the passage"] = sum(r["answer"] == raft.NOT_COVERED_ANSWER for r in rows)
        report["model"] = entry.name
        if not rows:
            raise CurationError("no question passed the checks: nothing to build")
        with db.session() as session:
            built = datasets.store(
                session,
                settings.data_dir,
                name,
                rows,
                collection=collection,
                held_out=recipe.held_out,
                seed=recipe.seed,
                created_by=created_by,
                action="dataset.synth",
            )
        return built, report
    except CurationError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()


def _generate_and_judge(
    engine: Any, chosen: list[Any], recipe: Recipe, cache: Any, embedder: Any, checks: Any
) -> tuple[list[tuple[Any, list[Any]]], int]:
    """Each passage with its pairs judged, and how many passages the model was asked
    about now (the others came from the cache)."""
    from app.curation import synthesis

    seen: set[str] = set()
    judged = []
    asked_now = 0
    with Progress(
        TextColumn("questions"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[asked]} asked, {task.fields[kept]} kept"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("synth", total=len(chosen), asked=0, kept=0)
        kept = 0

        def advance(done: int, asked: int) -> None:
            nonlocal asked_now
            asked_now = asked
            bar.update(task, completed=done, asked=asked)

        written = synthesis.generate(
            engine, chosen, recipe.questions_per_passage, cache, progress=advance
        )
        for passage, pairs in written:
            found = synthesis.judge(pairs, passage, embedder, checks, seen)
            if not pairs:
                found = [synthesis.Pair("", "", "no question written")]
            kept += sum(not p.rejected for p in found)
            bar.update(task, kept=kept)
            judged.append((passage, found))
    return judged, asked_now
