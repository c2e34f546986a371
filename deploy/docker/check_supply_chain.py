"""What deploy/docker/build-and-check asks of a built image's supply chain.

    python3 check_supply_chain.py SBOM PACKAGES LOCK...
    python3 check_supply_chain.py --validate SBOM

- every Python package the image holds (PACKAGES: `pip list --format json` run in it) is pinned
  by the lock files at that very version, and every pin is installed;
- the bill of materials (SBOM, CycloneDX JSON) lists Python and Debian packages, the
  model files with their hashes and llama.cpp's build flags; it is checked against the
  CycloneDX schema when cyclonedx-python-lib is importable (the project's virtualenv).

Prints a summary; exits non-zero with the reason on the first failure.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sbom.py, beside this file
from sbom import component_kinds

# Installed with the virtualenv or the project itself, so not in any lock file.
NOT_LOCKED = {"pip", "wheel", "docchat"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(locks: list[Path]) -> dict[str, str]:
    locked: dict[str, str] = {}
    for lock in locks:
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), re.M):
            locked[norm(m[1])] = m[2]
    return locked


def check_installed(packages: list[dict[str, str]], locked: dict[str, str]) -> str:
    installed = {norm(p["name"]): p["version"] for p in packages}
    differ = sorted(n for n in locked if installed.get(n) != locked[n])
    if differ:
        pairs = [(n, installed.get(n), locked[n]) for n in differ]
        raise SystemExit(f"the image differs from the lock (name, image, lock): {pairs}")
    extra = sorted(set(installed) - set(locked) - NOT_LOCKED)
    if extra:
        raise SystemExit(f"installed in the image but in no lock file: {extra}")
    return f"{len(locked)} locked packages, each installed at its locked version"


def check_sbom(bom: dict[str, Any]) -> list[str]:
    kinds = component_kinds(bom)
    models = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    llama = [c for c in bom["components"] if norm(c["name"]) == "llama-cpp-python"]
    if not kinds.get("python") or not kinds.get("deb"):
        raise SystemExit(f"the SBOM lacks Python or Debian packages: {kinds}")
    if not models or not all(c.get("hashes") for c in models):
        raise SystemExit("the SBOM lists no model files, or some without a hash")
    flags = {p["name"]: p["value"] for p in (llama[0].get("properties", []) if llama else [])}
    if not flags.get("llama.cpp:cmake_args"):
        raise SystemExit("the SBOM does not say how llama.cpp was built")
    lines = [
        f"CycloneDX {bom['specVersion']}: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    ]
    lines += [f"  model {c['name']} sha256 {c['hashes'][0]['content']}" for c in models]
    lines.append(
        f"  llama.cpp {llama[0]['version']}: {flags['llama.cpp:cmake_args']} "
        f"({flags.get('llama.cpp:accelerator')})"
    )
    return lines


def validate_schema(text: str) -> str:
    try:
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
    except ImportError:
        return "schema not checked (no cyclonedx-python-lib here: run with .venv-sbom/bin/python)"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error:
        raise SystemExit(f"the SBOM does not match the CycloneDX 1.6 schema: {error}")
    return "valid against the CycloneDX 1.6 schema"


def main() -> None:
    if sys.argv[1:2] == ["--validate"]:  # the schema check alone
        print(f"SBOM {validate_schema(Path(sys.argv[2]).read_text())}")
        return
    sbom, packages, *locks = (Path(a) for a in sys.argv[1:])
    print(check_installed(json.loads(packages.read_text()), pins(locks)))
    text = sbom.read_text()
    print(f"SBOM {sbom}:", "\n".join(check_sbom(json.loads(text))))
    print(f"SBOM {validate_schema(text)}")


if __name__ == "__main__":
    main()
