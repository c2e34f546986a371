"""Dependencies point one way: app -> ingest -> shared lower modules (common, and the
settings and stores that ingest writes through). Read from the source with `ast`, so
a new import that breaks a rule fails here, whatever imports it at run time."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("app", "ingest", "common")
# Entry points and wiring: they may use everything, and nothing below may use them.
TOP = ("app.api", "app.main", "app.cli", "app.components")
# What ingest may use of app: the settings it is given and the stores it writes.
INGEST_MAY_USE = ("app.settings", "app.store")
# Answering, telemetry and security never depend on how documents get in.
NEVER_INGEST = (
    "app.rag",
    "app.chat",
    "app.llm",
    "app.telemetry",
    "app.security",
    "app.store",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    """Project modules imported by `path` (all, or only those at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        yield from (n for n in names if n.split(".")[0] in PACKAGES)


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(rule: str) -> list[str]:
    found = []
    for path in sources():
        importer = module_name(path)
        for imported in imports(path):
            if rule == "common" and within(importer, ("common",)):
                bad = not within(imported, ("common",))
            elif rule == "ingest" and within(importer, ("ingest",)):
                bad = within(imported, ("app",)) and not within(imported, INGEST_MAY_USE)
            elif rule == "never-ingest" and within(importer, NEVER_INGEST):
                bad = within(imported, ("ingest",))
            elif rule == "upward" and not within(importer, TOP):
                bad = within(imported, TOP)
            else:
                bad = False
            if bad:
                found.append(f"{importer} imports {imported}")
    return found


@pytest.mark.parametrize("rule", ["common", "ingest", "never-ingest", "upward"])
def test_dependencies_point_one_way(rule: str) -> None:
    assert violations(rule) == []


def test_no_import_cycles_between_modules() -> None:
    """Module-level imports only: an import inside a function runs later, on purpose."""
    graph: dict[str, set[str]] = {}
    for path in sources():
        graph[module_name(path)] = set(imports(path, top_level_only=True))
    known = set(graph)
    for module, targets in graph.items():
        # `from app.x import name` may name a module or an object in one: keep modules.
        graph[module] = {t for t in targets if t in known and t != module}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The checker itself: a module that imports upward is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from app.api.chat import router\nimport ingest.pipeline\n")
    assert list(imports(bad)) == ["app.api.chat", "ingest.pipeline"]
    assert within("app.api.chat", TOP)
    assert not within("app.apiary", TOP)
