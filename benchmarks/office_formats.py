"""Speed and fidelity of the office-format readers, on the fixtures in tests/fixtures/formats.

    PYTHONPATH=. .venv/bin/python benchmarks/office_formats.py [--runs 20] [--json out.json]

Per file, two ways to get sections out of it:

- ``library``: what docchat runs (ingest/loaders/office_extract.py: python-docx,
  python-pptx, openpyxl, lxml for .odt, the HTML loader for .epub), timed in-process
  (median of --runs), and ``load_file`` as ingest calls it (the same plus the child
  process that bounds its time);
- ``libreoffice``: converting with LibreOffice (``soffice --headless --convert-to html``,
  or csv for a spreadsheet's first sheet) and reading the result with docchat's HTML
  loader, the one reader that covers every format (median of 3 runs: each starts soffice).

Fidelity: the section headings each way finds, against the headings the file was made
with (its source in tests/fixtures/formats/src), and whether the tables' rows survive as
"a | b" lines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ingest.loaders import html, load_file
from ingest.loaders.office_extract import extract

FORMATS = Path(__file__).parents[1] / "tests" / "fixtures" / "formats"
# (file, the headings it was made with, a table row as docchat renders it)
CASES = [
    (
        "widget-guide.docx",
        [
            "Widget Server operations guide",
            "Backups",
            "Restoring a backup",
            "Ports and limits",
            "Troubleshooting",
        ],
        "port | 7421 | The port the server listens on",
    ),
    (
        "widget-guide.odt",
        [
            "Widget Server operations guide",
            "Backups",
            "Restoring a backup",
            "Ports and limits",
            "Troubleshooting",
        ],
        "port | 7421 | The port the server listens on",
    ),
    (
        "release-talk.pptx",
        ["Widget Server 3.0", "What is new", "Upgrade steps"],
        "2.9 | none (rolling upgrade)",
    ),
    ("capacity.xlsx", ["Server sizes", "Support hours"], "Starter | 2 | 4 | 150"),
    (
        "field-manual.epub",
        ["Installing a widget on site", "Wiring", "Servicing"],
        "Dust filter | 6 months",
    ),
]


def library(name: str) -> tuple[list[str], str]:
    data = (FORMATS / name).read_bytes()
    lines = list(extract(Path(name).suffix[1:], data, 5_000_000))
    headings = [str(line["heading"]) for line in lines if line.get("heading")]
    text = "\n".join(p for line in lines for p in line.get("paragraphs", []))
    return headings, text


def libreoffice(name: str, out: Path) -> tuple[list[str], str] | None:
    """Headings and text through LibreOffice; None where it cannot open the file (EPUB)."""
    target = "csv" if name.endswith(".xlsx") else "html"
    subprocess.run(
        ["soffice", "--headless", "--convert-to", target, "--outdir", str(out), FORMATS / name],
        check=True,
        capture_output=True,
    )
    converted = out / f"{Path(name).stem}.{target}"
    if not converted.exists():
        return None
    if target == "csv":
        rows = converted.read_text().splitlines()
        return [], "\n".join(" | ".join(r.split(",")) for r in rows)
    doc = html.load(converted.read_text(errors="replace"), Path(name).stem)
    return [s.heading for s in doc.sections if s.heading], doc.text


def timed(fn: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    has_office = shutil.which("soffice") is not None
    results = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for name, expected, row in CASES:
            headings, text = library(name)
            result: dict[str, object] = {
                "file": name,
                "library_ms": round(1000 * timed(lambda n=name: library(n), args.runs), 1),
                "load_file_ms": round(
                    1000 * timed(lambda n=name: load_file(FORMATS / n), max(args.runs // 4, 3)), 1
                ),
                "library_headings": f"{len(set(headings) & set(expected))}/{len(expected)}",
                "library_table_row": row in text,
            }
            converted = libreoffice(name, out) if has_office else None
            if converted is not None:
                lo_headings, lo_text = converted
                result["libreoffice_ms"] = round(
                    1000 * timed(lambda n=name: libreoffice(n, out), 3), 1
                )
                result["libreoffice_headings"] = (
                    f"{len(set(lo_headings) & set(expected))}/{len(expected)}"
                )
                result["libreoffice_table_row"] = row in lo_text
            results.append(result)
            print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
