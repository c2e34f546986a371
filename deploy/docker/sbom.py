"""The image's software bill of materials (CycloneDX 1.6 JSON), written at build time.

    python3 sbom.py --python-bom PY.cdx.json --llama-build llama-build.json \\
        --models /opt/docchat --out /opt/docchat/sbom.cdx.json

It completes the Python packages' list that CycloneDX's own tool made of the installed
environment (`cyclonedx-py environment`) with what that tool cannot see:

- the system packages (Debian's dpkg database of the image it runs in);
- how llama.cpp was compiled (its CMake flags and accelerator, on the llama-cpp-python
  component, and the hash of the source release it was built from);
- the model files shipped in the image (GGUF, safetensors, ONNX...) with their SHA-256.

Standard library only: it runs in the runtime image, which has no build tools.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

MODEL_SUFFIXES = {".gguf", ".safetensors", ".onnx", ".bin", ".pt"}
# Only these names count as weights among *.bin files (tokenizers ship .bin files too).
BIN_WEIGHTS = re.compile(r"(pytorch_model|model)(-\d+-of-\d+)?\.bin$")


def deb_components(status: Path) -> list[dict[str, Any]]:
    """Installed packages from a dpkg status file, as CycloneDX components."""
    os_release = _os_release()
    distro = f"{os_release.get('ID', 'debian')}-{os_release.get('VERSION_ID', '')}".rstrip("-")
    components = []
    for stanza in status.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in stanza.splitlines()
            if ": " in line and not line.startswith(" ")
        )
        # "install ok installed"; removed packages keep a stanza ("... not-installed").
        if "Package" not in fields or fields.get("Status", "").split()[-1:] != ["installed"]:
            continue
        name, version, arch = (
            fields["Package"],
            fields.get("Version", ""),
            fields.get("Architecture", ""),
        )
        purl = f"pkg:deb/{os_release.get('ID', 'debian')}/{name}@{quote(version, safe='')}"
        purl += f"?arch={arch}&distro={distro}"
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
        }
        if fields.get("Source"):
            component["properties"] = [{"name": "deb:source", "value": fields["Source"]}]
        components.append(component)
    return components


def model_components(roots: list[Path]) -> list[dict[str, Any]]:
    """Every model weights file under the roots, with its SHA-256."""
    components = []
    seen: set[Path] = set()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in MODEL_SUFFIXES or path in seen:
                continue
            if path.suffix == ".bin" and not BIN_WEIGHTS.search(path.name):
                continue
            seen.add(path)
            digest = _sha256(path)
            components.append(
                {
                    "type": "machine-learning-model",
                    "bom-ref": f"model:{digest}",
                    "name": path.name,
                    "hashes": [{"alg": "SHA-256", "content": digest}],
                    "properties": [
                        {"name": "docchat:path", "value": str(path)},
                        {"name": "docchat:size_bytes", "value": str(path.stat().st_size)},
                    ],
                }
            )
    return components


def add_llama_build(components: list[dict[str, Any]], build: dict[str, Any]) -> None:
    """How llama.cpp was compiled, on the llama-cpp-python component."""
    for component in components:
        if component["name"].replace("_", "-").lower() == "llama-cpp-python":
            # Installed from the wheel compiled here, which the Python tool lists
            # without a package URL: it is PyPI's release, built from source.
            component.setdefault("purl", f"pkg:pypi/llama-cpp-python@{component['version']}")
            props = component.setdefault("properties", [])
            props += [
                {"name": "llama.cpp:cmake_args", "value": build.get("cmake_args", "")},
                {"name": "llama.cpp:accelerator", "value": build.get("accel", "")},
            ]
            if build.get("source_sha256"):
                component.setdefault("hashes", []).append(
                    {"alg": "SHA-256", "content": build["source_sha256"]}
                )
                props.append({"name": "llama.cpp:built_from", "value": "source release (sdist)"})
            return
    raise SystemExit("sbom: the Python list has no llama-cpp-python component")


def assemble(
    python_bom: dict[str, Any],
    status: Path,
    llama_build: dict[str, Any],
    model_roots: list[Path],
    image: str,
) -> dict[str, Any]:
    bom = dict(python_bom)
    components = list(bom.get("components", []))
    add_llama_build(components, llama_build)
    components += deb_components(status)
    components += model_components(model_roots)
    bom["components"] = components
    metadata = dict(bom.get("metadata", {}))
    metadata["timestamp"] = datetime.now(UTC).isoformat()
    root = dict(metadata.get("component", {"name": "docchat", "bom-ref": "root-component"}))
    # The root stays the docchat application (its dependencies point at it); the image
    # is named in a property.
    root.setdefault("properties", []).append({"name": "docchat:image", "value": image})
    metadata["component"] = root
    tools = metadata.setdefault("tools", {}).setdefault("components", [])
    tools.append(
        {
            "type": "application",
            "name": "docchat deploy/docker/sbom.py",
            "description": "adds system packages, llama.cpp build flags and model files",
        }
    )
    bom["metadata"] = metadata
    bom["serialNumber"] = f"urn:uuid:{uuid.uuid4()}"
    return bom


def component_kinds(bom: dict[str, Any]) -> dict[str, int]:
    """How many components of each kind: python and deb packages by their package URL,
    the rest by CycloneDX type (machine-learning-model, library...)."""
    kinds: Counter[str] = Counter()
    for component in bom["components"]:
        purl = component.get("purl", "")
        kind = "python" if purl.startswith("pkg:pypi/") else component["type"]
        kinds["deb" if purl.startswith("pkg:deb/") else kind] += 1
    return dict(kinds)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return {}
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in text.splitlines()) if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-bom", type=Path, required=True)
    parser.add_argument("--llama-build", type=Path, required=True)
    parser.add_argument("--models", type=Path, action="append", default=[])
    parser.add_argument("--dpkg-status", type=Path, default=Path("/var/lib/dpkg/status"))
    parser.add_argument("--image", default=os.environ.get("DOCCHAT_IMAGE", "docchat"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    bom = assemble(
        json.loads(args.python_bom.read_text()),
        args.dpkg_status,
        json.loads(args.llama_build.read_text()),
        args.models,
        args.image,
    )
    args.out.write_text(json.dumps(bom, indent=1) + "\n")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(component_kinds(bom).items()))
    print(f"sbom: {args.out}: {summary}", file=sys.stderr)


if __name__ == "__main__":
    main()
