"""Benchmark: what the ingest quality checks cost on a documentation set, and what they find.

Loads every page as `docchat ingest` does (default excludes), times each check over all
pages (comparing each page with the ones before it, as a run does), and counts the
findings per check. With --dry-run it also runs a real dry-run ingest and prints its
time by stage, where "checks" is the checks' share. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/quality_checks.py [--docs /usr/share/doc/python3.11/html]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from app.components import load_embedder, open_database
from app.settings import IngestSettings, Settings
from ingest.document import LoadedDocument
from ingest.loaders import load_file
from ingest.pipeline import Ingestor, discover
from ingest.quality import (
    SeenDocuments,
    check_boilerplate,
    check_document,
    check_duplicate,
    check_near_duplicate,
    paragraph_fingerprints,
    signature,
    text_hash,
)

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")


def timed(label: str, seconds: dict[str, float], started: float) -> None:
    seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--dry-run", action="store_true", help="also time a dry-run ingest")
    args = parser.parse_args()

    files, _ = discover([args.docs], IngestSettings().exclude)
    seconds: dict[str, float] = {}
    docs: dict[str, LoadedDocument] = {}
    started = time.perf_counter()
    for file in files:
        docs[file.source] = load_file(file.path)
    timed("load (for comparison)", seconds, started)

    found: Counter[str] = Counter()
    seen = SeenDocuments()
    paragraphs = {}
    for source, doc in docs.items():
        started = time.perf_counter()
        found.update(issue.check for issue in check_document(doc))
        timed("garbled, near-empty, injection", seconds, started)
        started = time.perf_counter()
        digest, sig = text_hash(doc.text), signature(doc.text)
        timed("text hash and signature", seconds, started)
        started = time.perf_counter()
        duplicate = check_duplicate(source, digest, seen)
        near = check_near_duplicate(source, sig, seen)
        found.update(issue.check for issue in (duplicate, near) if issue)
        if duplicate is None:
            seen.add(source, source, digest, sig)
        timed("duplicate and near-duplicate", seconds, started)
        started = time.perf_counter()
        paragraphs[source] = paragraph_fingerprints(doc)
        timed("boilerplate", seconds, started)
    started = time.perf_counter()
    boilerplate = check_boilerplate(paragraphs)
    found["boilerplate"] += len(boilerplate)
    timed("boilerplate", seconds, started)

    checks = sum(s for label, s in seconds.items() if not label.startswith("load"))
    print(f"{len(docs)} pages, {sum(len(d.text) for d in docs.values()) / 1e6:.1f} M characters")
    for label, s in seconds.items():
        print(f"  {label:<32} {s:7.2f} s")
    print(f"  {'all checks':<32} {checks:7.2f} s ({checks / len(docs) * 1000:.1f} ms a page)")
    print("findings:", dict(found) or "none")
    for source, issue in sorted(boilerplate.items()):
        print(f"  boilerplate: {source}: {issue.reason}")

    if args.dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
            db = open_database(settings)
            try:
                ingestor = Ingestor.configured(settings.ingest, db, None, load_embedder(settings))
                summary = ingestor.run([args.docs], "bench", dry_run=True)
            finally:
                db.close()
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stages.items())
        share = summary.stages.get("checks", 0.0) / summary.seconds
        print(f"dry-run ingest: {summary.seconds:.1f} s ({stages}); checks {share:.1%} of it")


if __name__ == "__main__":
    main()
