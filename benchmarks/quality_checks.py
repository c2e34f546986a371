"""Benchmark: what the ingest quality checks cost on a documentation set, and what they find.

Loads every page as `docchat ingest` does (default excludes), puts each through the
quality gate a run uses (ingest/quality_gate.py: the same checks in the same order, each
page compared with the ones before it), times each kind of check, and counts the
findings per check (chunk checks aside: they need the embedder's tokenizer). With
--dry-run it also runs a real dry-run ingest and prints its time by stage, where
"checks" is the checks' share. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/quality_checks.py [--docs /usr/share/doc/python3.11/html]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from app.components import open_ingestor
from app.settings import IngestSettings, Settings
from ingest.discovery import discover
from ingest.document import LoadedDocument
from ingest.loaders import load_file
from ingest.quality import SeenDocuments
from ingest.quality_gate import QualityGate

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--dry-run", action="store_true", help="also time a dry-run ingest")
    args = parser.parse_args()

    files, _ = discover([args.docs], IngestSettings().exclude)
    started = time.perf_counter()
    docs: dict[str, LoadedDocument] = {str(f.path): load_file(f.path) for f in files}
    loading = time.perf_counter() - started

    # The gate a run uses, starting from an empty collection: the same checks, the same order.
    seconds: dict[str, float] = {}
    gate = QualityGate(SeenDocuments(), seconds)
    found: Counter[str] = Counter()
    for file in files:
        verdict = gate.check(str(file.path), file.source, docs[str(file.path)])
        found.update(finding.check for finding in verdict.findings)
    boilerplate = gate.finish()
    found.update(finding.check for finding in boilerplate)

    checks = sum(seconds.values())
    print(f"{len(docs)} pages, {sum(len(d.text) for d in docs.values()) / 1e6:.1f} M characters")
    print(f"  {'load (for comparison)':<32} {loading:7.2f} s")
    for label, s in seconds.items():
        print(f"  {label:<32} {s:7.2f} s")
    print(f"  {'all checks':<32} {checks:7.2f} s ({checks / len(docs) * 1000:.1f} ms a page)")
    print("findings:", dict(found) or "none")
    for finding in sorted(boilerplate, key=lambda found: found.source):
        print(f"  boilerplate: {finding.source}: {finding.reason}")

    if args.dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
            with open_ingestor(settings, dry_run=True) as ingestor:
                summary = ingestor.run([args.docs], "bench", dry_run=True)
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stages.items())
        share = summary.stages.get("checks", 0.0) / summary.seconds
        print(f"dry-run ingest: {summary.seconds:.1f} s ({stages}); checks {share:.1%} of it")


if __name__ == "__main__":
    main()
