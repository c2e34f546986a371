"""Dependencies point one way, at package level: each package sits in one layer of the
order docs/architecture.md draws, and imports only from its own layer (without a cycle)
or from layers below it. Every import counts — at module level, inside a function, or
under `if TYPE_CHECKING:` — since each is a dependency someone reading the code follows.
Read from the source with `ast`, so a new import against the order fails here, whatever
imports it at run time."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("app", "ingest", "common")
# The order, top to bottom. A package is `app.<name>` (a subpackage or a module of app),
# `ingest` or `common`; `app` alone is app/__init__.py (the version).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry points", ("app.api", "app.cli", "app.main", "app.healthcheck", "app.web")),
    ("composition", ("app.components", "app.config_report")),
    (
        "features",
        (
            "app.chat",
            "app.curation",
            "app.evaluation",
            "app.releases",
            "app.finetune",
            "app.backup",
            "app.auth",
            "app.access",
            "ingest",
        ),
    ),
    ("rag and engines", ("app.rag", "app.llm")),
    # Telemetry redacts with security's redactor; security's checks report nothing.
    ("telemetry", ("app.telemetry",)),
    ("security", ("app.security",)),
    ("store", ("app.store",)),
    ("settings", ("app.settings",)),
    ("common", ("app", "common")),
)
# What ingest may use of app, beyond the order: the settings it is given and the stores
# it writes (not the features beside it).
INGEST_MAY_USE = ("app.settings", "app.store")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, *, top_level_only: bool = False) -> Iterator[str]:
    """Project modules a source imports (all, or only those at module level)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        yield from (n for n in names if n.split(".")[0] in PACKAGES)


def imports(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    return imports_in(path.read_text(encoding="utf-8"), top_level_only=top_level_only)


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def package_of(module: str) -> str:
    """`app.llm.engine` -> `app.llm`; `app.main` -> `app.main`; `ingest.x` -> `ingest`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "app" else parts[0]


def layer_of(package: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if package in members:
            return index
    raise LookupError(f"package {package} is in no layer: place it in LAYERS")


def edges() -> list[tuple[str, str]]:
    """(importer module, imported module) for every project import."""
    return [(module_name(path), imported) for path in sources() for imported in imports(path)]


def against_the_order(found: Iterable[tuple[str, str]]) -> list[str]:
    """Imports from a lower layer up, and package cycles inside one layer."""
    problems = []
    within: dict[str, set[str]] = defaultdict(set)
    for importer, imported in found:
        source, target = package_of(importer), package_of(imported)
        if source == target:
            continue
        up, down = layer_of(source), layer_of(target)
        if down < up:
            problems.append(
                f"{importer} imports {imported}: {LAYERS[up][0]} may not use {LAYERS[down][0]}"
            )
        elif down == up:
            within[source].add(target)
    problems += [f"package cycle: {' -> '.join(c)}" for c in cycles(within)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk of `graph` meets."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_every_package_is_placed() -> None:
    packages = {package_of(m) for path in sources() for m in (module_name(path),)}
    unplaced = []
    for package in sorted(packages):
        try:
            layer_of(package)
        except LookupError as exc:
            unplaced.append(str(exc))
    assert unplaced == []


def test_imports_follow_the_package_order() -> None:
    assert against_the_order(edges()) == []


def test_ingest_uses_only_the_settings_and_stores_of_app() -> None:
    found = [
        f"{importer} imports {imported}"
        for importer, imported in edges()
        if importer.split(".")[0] == "ingest"
        and imported.split(".")[0] == "app"
        and package_of(imported) not in INGEST_MAY_USE
    ]
    assert found == []


def test_common_uses_nothing_of_app_or_ingest() -> None:
    found = [
        f"{importer} imports {imported}"
        for importer, imported in edges()
        if importer.split(".")[0] == "common" and imported.split(".")[0] != "common"
    ]
    assert found == []


def test_no_import_cycles_between_modules() -> None:
    """Module-level imports only: an import inside a function runs later, on purpose."""
    graph: dict[str, set[str]] = {}
    for path in sources():
        graph[module_name(path)] = set(imports(path, top_level_only=True))
    known = set(graph)
    for module, targets in graph.items():
        # `from app.x import name` may name a module or an object in one: keep modules.
        graph[module] = {t for t in targets if t in known and t != module}
    assert [" -> ".join(c) for c in cycles(graph)] == []


@pytest.mark.parametrize(
    ("importer", "source"),
    [
        # Each a deliberately wrong import, in each of the forms the rule reads.
        ("app.store.db", "from app.chat.service import ChatService\n"),
        ("app.llm.engine", "def later():\n    from app.releases.registry import Registry\n"),
        (
            "app.rag.retrieval",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ingest.pipeline\n",
        ),
        ("app.settings", "import app.telemetry.metrics\n"),
    ],
)
def test_a_wrong_import_is_reported(importer: str, source: str) -> None:
    """The rule itself: one import against the order, added to the real ones, fails."""
    wrong = [(importer, imported) for imported in imports_in(source)]
    assert len(wrong) == 1
    problems = against_the_order([*edges(), *wrong])
    assert len(problems) == 1
    assert problems[0].startswith(f"{importer} imports {wrong[0][1]}:")


def test_a_cycle_inside_a_layer_is_reported() -> None:
    """Features may use each other, one way: releases use evaluation, never back."""
    wrong = ("app.evaluation.answers", "app.releases.gate")
    problems = against_the_order([*edges(), wrong])
    assert problems
    assert all(p.startswith("package cycle:") for p in problems)
    assert any("app.evaluation -> app.releases" in p for p in problems)
