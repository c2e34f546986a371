#!/usr/bin/env python3
"""Known vulnerabilities in the locked dependencies (`make audit`, deploy/docker/build-and-check).

Runs pip-audit over the lock files (their pins and hashes, nothing installed) against
PyPI's advisory data and says plainly how much of it could be checked: pip-audit reports
a package whose advisories it cannot fetch as skipped, and would otherwise print "No known
vulnerabilities found" for a run that checked nothing.

Exit status: 0 all checked and clean; 1 known vulnerabilities; 3 the advisory data was
unreachable for every package (nothing was checked); 4 partly checked, none found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCKS = ["dev.lock", "torch.lock", "llama.lock"]


def main() -> int:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [
        str(pip_audit),
        "--disable-pip",
        "--require-hashes",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    for lock in LOCKS:
        command += ["-r", str(HERE / lock)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(run.stderr.strip() or run.stdout.strip(), file=sys.stderr)
        print("audit: pip-audit failed before it checked anything", file=sys.stderr)
        return 3
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    checked = len(deps) - len(skipped)
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    print(
        f"audit: {checked} of {len(deps)} locked packages checked, "
        f"{sum(len(d['vulns']) for d in vulnerable)} known vulnerabilities, "
        f"{len(skipped)} not checked"
    )
    if skipped:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        print(f"  not checked: {', '.join(reasons)} (e.g. {skipped[0]['name']})")
    if vulnerable:
        return 1
    if deps and checked == 0:
        print("audit: the advisory data was unreachable from here: nothing was checked")
        return 3
    return 4 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
