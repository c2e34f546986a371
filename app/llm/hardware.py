"""What this machine gives the chat model: CPU cores, memory and a GPU, as a container
sees them (cgroup CPU quota and memory limit, CPU affinity), not as the host has them.

Read from /proc and /sys/fs/cgroup (v2, or v1's cpu and memory hierarchies); every
figure carries the reason it has the value it has, for `docchat models recommend`.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
# cgroup v1 writes "no limit" as a huge number (a page-rounded 2**63 - 1).
NO_LIMIT = 1 << 60


@dataclass(frozen=True)
class Hardware:
    """The machine as the chat model sees it."""

    cores: float  # CPUs this process may use (a quota of 1.5 CPUs is 1.5)
    cores_why: str
    memory_bytes: int
    memory_why: str
    gpu: bool  # llama.cpp can offload and a device is visible
    gpu_why: str
    gpu_memory_bytes: int | None = None
    # The CPU's flags (/proc/cpuinfo): some weight types are fast only with some kernels.
    cpu_flags: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, object]:
        return {
            "cores": self.cores,
            "cores_why": self.cores_why,
            "memory_bytes": self.memory_bytes,
            "memory_why": self.memory_why,
            "gpu": self.gpu,
            "gpu_why": self.gpu_why,
            "gpu_memory_bytes": self.gpu_memory_bytes,
        }


def _groups(proc: Path) -> dict[str, str]:
    """Controller (or "" for v2) to this process's cgroup path, from /proc/self/cgroup."""
    found: dict[str, str] = {}
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def _up_from(base: Path, group: str) -> list[Path]:
    """The group's folder and each parent up to the hierarchy's root: a parent's limit
    binds its children too. In a container the group is often "/" (its own namespace)."""
    folders = []
    here = base / group.lstrip("/")
    while True:
        folders.append(here)
        if here == base or base not in here.parents:
            return folders
        here = here.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_quota(root: Path = CGROUP_ROOT, proc: Path = PROC) -> float | None:
    """CPUs the cgroup's quota allows (quota / period, the tightest along the path), or
    None when no quota is set."""
    groups = _groups(proc)
    limits: list[float] = []
    if "" in groups:  # v2: "max 100000" or "150000 100000"
        for folder in _up_from(root, groups[""]):
            text = _read(folder / "cpu.max")
            if text and not text.startswith("max"):
                quota, _, period = text.partition(" ")
                limits.append(int(quota) / int(period or "100000"))
    for controller in ("cpu", "cpu,cpuacct"):
        base = root / controller
        if "cpu" not in groups or not base.is_dir():
            continue
        for folder in _up_from(base, groups["cpu"]):
            cfs_quota = _read(folder / "cpu.cfs_quota_us")
            cfs_period = _read(folder / "cpu.cfs_period_us")
            if cfs_quota and cfs_period and int(cfs_quota) > 0:
                limits.append(int(cfs_quota) / int(cfs_period))
        break
    return min(limits) if limits else None


def memory_limit(root: Path = CGROUP_ROOT, proc: Path = PROC) -> int | None:
    """Bytes the cgroup allows (the tightest along the path), or None when unlimited."""
    groups = _groups(proc)
    limits: list[int] = []
    if "" in groups:
        for folder in _up_from(root, groups[""]):
            text = _read(folder / "memory.max")
            if text and text != "max":
                limits.append(int(text))
    if "memory" in groups and (root / "memory").is_dir():
        for folder in _up_from(root / "memory", groups["memory"]):
            text = _read(folder / "memory.limit_in_bytes")
            if text and int(text) < NO_LIMIT:
                limits.append(int(text))
    return min(limits) if limits else None


def _mem_available(proc: Path) -> int:
    for line in (_read(proc / "meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def usable_cores(
    n_threads: int | None, root: Path = CGROUP_ROOT, proc: Path = PROC
) -> tuple[float, str]:
    """CPUs llama.cpp gets: the fewest of the CPUs this process may run on (affinity),
    the cgroup's quota and llm.n_threads; with the reason."""
    online = os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else online
    why = [f"{online} CPUs online", f"{allowed} in this process's affinity"]
    cores = float(allowed)
    quota = cpu_quota(root, proc)
    if quota is not None:
        why.append(f"cgroup quota {quota:g} CPUs")
        cores = min(cores, quota)
    if n_threads is not None:
        why.append(f"llm.n_threads={n_threads}")
        cores = min(cores, float(n_threads))
    return max(cores, 0.1), ", ".join(why)


def default_threads(root: Path | None = None, proc: Path | None = None) -> int:
    """Threads for work that would take every core (llama.cpp's, ONNX Runtime's) when
    none are configured: the usable cores, whole (a quota of 1.5 CPUs gives 1), at
    least 1. More threads than the quota allows are throttled in turn, and run slower
    than fewer would."""
    cores, _ = usable_cores(None, root or CGROUP_ROOT, proc or PROC)
    return max(1, math.floor(cores))


def usable_memory(root: Path = CGROUP_ROOT, proc: Path = PROC) -> tuple[int, str]:
    """Memory a model may take: available memory, or the cgroup's limit if lower."""
    available = _mem_available(proc)
    why = f"{available / 2**30:.1f} GiB available"
    limit = memory_limit(root, proc)
    if limit is not None and (not available or limit < available):
        return limit, f"{why}, cgroup limit {limit / 2**30:.1f} GiB"
    return available, why


def _gpu_memory() -> int | None:
    """Total memory of the first NVIDIA GPU, from nvidia-smi where it is installed."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split()
        return int(out[0]) * 2**20 if out else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def gpu_offload(n_gpu_layers: int) -> tuple[bool, str, int | None]:
    """Whether the chat model's layers go to a GPU: llama.cpp built with offload, a
    device visible, and llm.n_gpu_layers not 0; with the reason."""
    try:
        import llama_cpp

        built = bool(llama_cpp.llama_supports_gpu_offload())
    except (ImportError, OSError, AttributeError):
        built = False
    if not built:
        return False, "llama.cpp was built without GPU offload (CPU build)", None
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1")
    metal = platform.system() == "Darwin"
    nvidia = any(Path("/dev").glob("nvidia[0-9]*")) and not hidden
    if not (metal or nvidia):
        return False, "llama.cpp can offload, but no GPU device is visible", None
    device = "Metal" if metal else "an NVIDIA device (/dev/nvidia*)"
    if n_gpu_layers == 0:
        return False, f"{device} is usable, but llm.n_gpu_layers=0 keeps the model on the CPU", None
    memory = None if metal else _gpu_memory()
    return True, f"llama.cpp offloads to {device}, llm.n_gpu_layers={n_gpu_layers}", memory


def cpu_flags(proc: Path = PROC) -> frozenset[str]:
    """The CPU's feature flags, as the kernel lists them for its first CPU (empty where
    /proc/cpuinfo has none, e.g. on another architecture)."""
    try:
        text = (proc / "cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def probe(n_threads: int | None = None, n_gpu_layers: int = 0) -> Hardware:
    """This machine, as the chat model will see it."""
    cores, cores_why = usable_cores(n_threads)
    memory, memory_why = usable_memory()
    gpu, gpu_why, gpu_memory = gpu_offload(n_gpu_layers)
    return Hardware(
        cores=math.floor(cores * 100) / 100,
        cores_why=cores_why,
        memory_bytes=memory,
        memory_why=memory_why,
        gpu=gpu,
        gpu_why=gpu_why,
        gpu_memory_bytes=gpu_memory,
        cpu_flags=cpu_flags(),
    )
