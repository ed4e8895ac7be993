"""Deployment resources: the cores, memory and GPUs a deployment may use, checked once and applied per target.

``{"cpu": 2, "memory": "2Gi", "gpu": 0}`` is parsed and checked here before anything is recorded (``parse``), the
device is chosen here (``place``: onnxruntime's CUDA provider for ``gpu >= 1``, a refusal naming what is missing
on a machine without one, a recorded fallback for ``gpu="prefer"``), and each target applies what it can:

- in the endpoint's workers (``scoring.load_scorer``): onnxruntime's intra-op threads and the micro-batching
  threads follow ``cpu``; ``memory`` is checked against the loaded model's resident size (``check_loaded``);
- in a process of its own (``isolated.spawn``): CPU affinity for ``cpu``, a cgroup v2 ``memory.max`` where a
  memory controller is delegated here, else an address-space limit (``RLIMIT_AS``), else a refusal;
- in a container (``docker.run_arguments``): ``nano_cpus``, ``mem_limit`` and GPU device requests;
- packaged (``package.py``, ``kserve.py``): the Dockerfile documents them, the manifest requests and limits them.

What a deployment was given travels as one JSON dict (``Resources.serving``): in its options for the router, in
``MLOPS_RESOURCES`` for a process or container of its own (``from_env``), so the serving side needs no store.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.exceptions import InvalidInput

ENV = "MLOPS_RESOURCES"  # the serving dict of a deployment process (set by its launcher, read by from_env)
DEVICE_ENV = "MLOPS_DEVICE"  # "cpu" or "cuda:0": what a scoring script or pyfunc model should run on
MEMORY_EXIT_CODE = 86  # a deployment process that exceeded its memory limit exits with this code
MEMORY_EXCEEDED = "exceeded its memory limit"  # how restarts and events say so
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ACCEPTED = (
    "resources is a dict with any of cpu (cores: a positive number such as 2 or 0.5, or Kubernetes' '500m'), "
    "memory (bytes, or a quantity such as '512Mi', '2Gi', '1G') and gpu (a whole number of GPUs, or 'prefer')"
)
MEMORY_FORMS = (
    "a number of bytes or a quantity with a binary suffix Ki, Mi, Gi, Ti (e.g. '512Mi', '2Gi') or a decimal one "
    "k, M, G, T (e.g. '1G')"
)
_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_MEMORY_ERRORS = (
    "MemoryError",
    "std::bad_alloc",
    "Cannot allocate memory",
    "out of memory",
    "Out of memory",
    "failed to map segment",  # the loader, when the address space cannot hold the interpreter
)


@dataclass(frozen=True)
class Resources:
    """What a deployment asked for: cores (None: no limit), memory in bytes (None: no limit), GPUs or "prefer"."""

    cpu: float | None = None
    memory: int | None = None
    gpu: int | str = 0
    memory_text: str | None = None  # as given ("2Gi"), to say it back the way it was asked

    @property
    def cores(self) -> int | None:
        """Whole cores: the threads, and the CPUs a process is pinned to (0.5 of a core still needs one)."""
        return None if self.cpu is None else max(1, math.ceil(self.cpu))

    @property
    def empty(self) -> bool:
        return self.cpu is None and self.memory is None and self.gpu == 0

    def asked(self) -> dict[str, Any]:
        """As recorded and shown: ``{"cpu": 2, "memory": "2Gi", "gpu": 0}`` (unset limits left out)."""
        out: dict[str, Any] = {}
        if self.cpu is not None:
            out["cpu"] = int(self.cpu) if float(self.cpu).is_integer() else self.cpu
        if self.memory is not None:
            out["memory"] = self.memory_text or str(self.memory)
        out["gpu"] = self.gpu
        return out

    def describe(self) -> str:
        asked = self.asked()
        return ", ".join(f"{k} {v}" for k, v in asked.items()) or "no limits"


def parse(value: Mapping[str, Any] | Resources | None, *, machine: bool = True) -> Resources:
    """``resources`` as given to deploy/package/batch, checked: an InvalidInput naming the value and the accepted
    forms. With ``machine``, ``cpu`` must fit this machine's cores (packaging targets another machine)."""
    if value is None:
        return Resources()
    if isinstance(value, Resources):
        resources = value
    else:
        if not isinstance(value, Mapping):
            raise InvalidInput(f"{ACCEPTED}; not {value!r}.")
        unknown = sorted(set(value) - {"cpu", "memory", "gpu"})
        if unknown:
            raise InvalidInput(f"Unknown resource(s) {', '.join(map(repr, unknown))}: {ACCEPTED}.")
        memory = value.get("memory")
        resources = Resources(
            cpu=parse_cpu(value.get("cpu")),
            memory=parse_memory(memory),
            gpu=parse_gpu(value.get("gpu", 0)),
            memory_text=None if memory is None else str(memory).strip(),
        )
    if machine and resources.cpu is not None and resources.cpu > machine_cores():
        raise InvalidInput(
            f"cpu={resources.asked()['cpu']} is more than this machine's {machine_cores()} core(s): ask for at most "
            f"{machine_cores()}."
        )
    return resources


def parse_cpu(value: Any) -> float | None:
    if value is None:
        return None
    number: float | None = None
    plain = isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value)
    if plain or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+m\s*", value):
        number = int(value.strip()[:-1]) / 1000
    if number is None or not math.isfinite(number) or number <= 0:
        raise InvalidInput(
            f"cpu={value!r} is not a number of cores: give a positive number such as 1, 2 or 0.5, or millicores "
            "such as '500m'."
        )
    return number


def parse_memory(value: Any) -> int | None:
    if value is None:
        return None
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    elif match:
        amount = int(float(match.group(1)) * _UNITS[match.group(2) or ""])
    else:
        amount = 0
    if amount <= 0:
        raise InvalidInput(f"memory={value!r} is not an amount of memory: give {MEMORY_FORMS}.")
    return amount


def parse_gpu(value: Any) -> int | str:
    if value == "prefer":
        return "prefer"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(
            f"gpu={value!r} is not a number of GPUs: give 0 (none), 1 or more (refused where this machine has "
            "none), or 'prefer' (one when there is one, else the CPU, recorded as such)."
        )
    return value


def machine_cores() -> int:
    """The cores this process may run on (its affinity), which is what a deployment started here can get."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def size(amount: int | float) -> str:
    """``2 GiB``, ``512 MiB``, ``1.3 MiB``: a size the way people read it."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if amount >= factor:
            value = amount / factor
            return f"{value:.0f} {unit}" if value.is_integer() or value >= 100 else f"{value:.1f} {unit}"
    return f"{int(amount)} bytes"


# -- GPUs ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuSupport:
    """What this machine offers for GPU inference: its CUDA devices and onnxruntime's execution providers."""

    devices: int
    providers: tuple[str, ...]
    onnxruntime: str  # "onnxruntime 1.32.0", "onnxruntime-gpu 1.32.0", or "no onnxruntime"

    @property
    def cuda_provider(self) -> bool:
        return CUDA in self.providers


def detect() -> GpuSupport:
    """This machine's CUDA devices (the NVIDIA driver's device files) and this Python's onnxruntime providers."""
    from importlib import metadata

    devices = len(list(Path("/proc/driver/nvidia/gpus").glob("*"))) or len(
        [p for p in Path("/dev").glob("nvidia[0-9]*") if p.name[6:].isdigit()]
    )
    providers: tuple[str, ...] = ()
    package = "no onnxruntime"
    for name in ("onnxruntime-gpu", "onnxruntime"):
        try:
            package = f"{name} {metadata.version(name)}"
            break
        except metadata.PackageNotFoundError:
            continue
    if package != "no onnxruntime":
        import onnxruntime

        providers = tuple(onnxruntime.get_available_providers())
    return GpuSupport(devices, providers, package)


def lock_support(lock: str | None, devices: int) -> GpuSupport:
    """The support of an environment's virtualenv, from its lock: CUDA only with ``onnxruntime-gpu`` in it."""
    lines = [line.strip().lower() for line in (lock or "").splitlines()]
    gpu = next((line for line in lines if line.startswith("onnxruntime-gpu==")), None)
    cpu = next((line for line in lines if line.startswith("onnxruntime==")), None)
    found = gpu or cpu
    package = found.replace("==", " ") if found else "no onnxruntime"
    return GpuSupport(devices, (CUDA, CPU) if gpu else (CPU,) if cpu else (), package)


@dataclass(frozen=True)
class Placement:
    """Where a deployment infers: the onnxruntime provider (or "cpu"/"cuda" for other models), the GPUs it sees,
    and, when it asked for a GPU it does not get, why."""

    provider: str
    gpus: tuple[int, ...] = ()
    note: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def place(resources: Resources, *, onnx: bool, support: GpuSupport) -> Placement:
    """The device a deployment runs on. ``gpu >= 1`` without what it needs is refused naming what is missing;
    ``gpu="prefer"`` falls back to the CPU and says why in ``note``."""
    wanted = 1 if resources.gpu == "prefer" else int(resources.gpu)
    if wanted == 0:
        return Placement(CPU if onnx else "cpu", (), None, {DEVICE_ENV: "cpu", "CUDA_VISIBLE_DEVICES": ""})
    missing = []
    if support.devices < wanted:
        missing.append(
            "no CUDA device on this machine (no NVIDIA driver device in /dev or /proc/driver/nvidia)"
            if support.devices == 0
            else f"{wanted} GPUs asked for, this machine has {support.devices}"
        )
    if onnx and not support.cuda_provider:
        missing.append(
            (
                f"{support.onnxruntime} without CUDA (its providers: {', '.join(support.providers)})"
                if support.providers
                else "no onnxruntime-gpu (no onnxruntime at all)"
            )
            + "; install onnxruntime-gpu in place of onnxruntime: pip uninstall -y onnxruntime && pip install "
            "onnxruntime-gpu"
        )
    if missing and resources.gpu == "prefer":
        note = f"gpu preferred, on the CPU: {'; '.join(missing)}"
        return Placement(CPU if onnx else "cpu", (), note, {DEVICE_ENV: "cpu", "CUDA_VISIBLE_DEVICES": ""})
    if missing:
        raise InvalidInput(
            f"gpu={resources.gpu} cannot be served here: {'; '.join(missing)}. Deploy with gpu=0, or gpu='prefer' "
            "to fall back to the CPU.",
            missing=missing,
        )
    gpus = tuple(range(wanted))
    visible = ",".join(map(str, gpus))
    return Placement(CUDA if onnx else "cuda", gpus, None, {DEVICE_ENV: "cuda:0", "CUDA_VISIBLE_DEVICES": visible})


def serving(resources: Resources, placement: Placement, **applied: Any) -> dict[str, Any]:
    """The one dict a deployment's server gets (in its options, or ``MLOPS_RESOURCES``): what was asked, where it
    runs, and what its launcher applied (``cpus``, ``memory_via``)."""
    out: dict[str, Any] = {**resources.asked(), "provider": placement.provider, "env": placement.env}
    if resources.cpu is not None:
        out["threads"] = resources.cores
    if resources.memory is not None:
        out["memory_bytes"] = resources.memory
    if placement.note:
        out["note"] = placement.note
    return out | applied


def plan(
    resources: Resources, *, runs_in: str, onnx: bool, lock: str | None = None, key: str = ""
) -> tuple[Placement, dict[str, Any]]:
    """Where a deployment that runs ``runs_in`` (router, venv, docker) infers, and the serving dict it gets: the
    device checked against what that target has (this Python's onnxruntime, the environment's lock, or the
    image's, which installs onnxruntime-gpu when a GPU is asked for), the limits a process of its own takes."""
    support = GpuSupport(0, (CPU,), "onnxruntime")
    if resources.gpu != 0:
        here = detect()
        if runs_in == "venv":
            support = lock_support(lock, here.devices)
        elif runs_in == "docker":
            support = GpuSupport(here.devices, (CUDA, CPU), "onnxruntime-gpu (installed in the image)")
        else:
            support = here
    placement = place(resources, onnx=onnx, support=support)
    applied = process_limits(resources, key) if runs_in == "venv" else {}
    return placement, serving(resources, placement, **applied)


def from_flags(cpu: str | None, memory: str | None, gpu: str | None) -> dict[str, Any] | None:
    """The ``resources`` of the CLI's ``--cpu``, ``--memory`` and ``--gpu`` (None when none is given)."""
    given = {"cpu": cpu, "memory": memory, "gpu": gpu}
    return {k: v for k, v in given.items() if v is not None} or None


def from_env() -> dict[str, Any] | None:
    """The serving dict a deployment process's launcher set in ``MLOPS_RESOURCES`` (None when it set none)."""
    text = os.environ.get(ENV)
    return json.loads(text) if text else None


# -- a process of its own -----------------------------------------------------------------------------------------
def choose_cpus(cores: int, key: str) -> list[int]:
    """``cores`` of the CPUs this process may use, starting at a place that depends on ``key`` (the deployment),
    so that one-core deployments of an endpoint do not all land on the same CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    start = zlib.crc32(key.encode()) % len(allowed)
    return sorted((allowed[start:] + allowed[:start])[:cores])


def cgroup_parent() -> Path | None:
    """A cgroup v2 folder under which this process may create groups with ``memory.max``: its own cgroup's, when
    the memory controller is enabled for its children and the folder is writable; None otherwise."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = next(
            line.split("::", 1)[1] for line in Path("/proc/self/cgroup").read_text().splitlines() if "::" in line
        )
    except (OSError, StopIteration):
        return None
    for line in mounts:
        parts = line.split(" - ")
        if len(parts) == 2 and parts[1].startswith("cgroup2 "):
            folder = Path(line.split()[4]) / own.strip().lstrip("/")
            controls = folder / "cgroup.subtree_control"
            try:
                if "memory" in controls.read_text().split() and os.access(folder, os.W_OK):
                    return folder
            except OSError:
                continue
    return None


def memory_method() -> str | None:
    """How a process started here can be held to a memory limit: "cgroup" (v2 ``memory.max``: resident memory),
    "rlimit" (``RLIMIT_AS``: its address space), or None."""
    if cgroup_parent() is not None:
        return "cgroup"
    try:
        import resource

        resource.getrlimit(resource.RLIMIT_AS)
        return "rlimit"
    except (ImportError, AttributeError, OSError):
        return None


METHODS = {"cgroup": "cgroup v2 memory.max", "rlimit": "address-space limit (RLIMIT_AS)"}


def process_limits(resources: Resources, key: str) -> dict[str, Any]:
    """What a process of its own gets: its CPUs and how its memory is limited; refused where neither a cgroup v2
    memory controller nor RLIMIT_AS is available (a limit that is not enforced is not pretended)."""
    applied: dict[str, Any] = {}
    if resources.cores is not None:
        applied["cpus"] = choose_cpus(resources.cores, key)
    if resources.memory is not None:
        method = memory_method()
        if method is None:
            raise InvalidInput(
                f"memory={resources.memory_text} cannot be enforced for a process on this machine: it has no cgroup "
                "v2 memory controller delegated to this user and no RLIMIT_AS. Deploy without memory, in the "
                "endpoint's workers, or with target='docker'."
            )
        applied["memory_via"] = method
    return applied


def limits_text(config: Mapping[str, Any] | None, runs_in: str) -> str | None:
    """What was applied, in words, for ``ep.info`` and the CLI."""
    if not config:
        return None
    parts = []
    if runs_in == "router":
        if "threads" in config:
            parts.append(f"{config['threads']} onnxruntime intra-op and micro-batching thread(s)")
        if "memory_bytes" in config:
            parts.append(f"memory {size(config['memory_bytes'])} checked against the loaded model")
    elif runs_in == "venv":
        if "cpus" in config:
            parts.append(f"CPU affinity {','.join(map(str, config['cpus']))}")
        if "memory_bytes" in config:
            parts.append(f"memory {size(config['memory_bytes'])} by {METHODS[config['memory_via']]}")
    else:
        if "cpu" in config:
            parts.append(f"nano_cpus {int(float(config['cpu']) * 1e9)}")
        if "memory_bytes" in config:
            parts.append(f"mem_limit {config['memory_bytes']}")
        if config.get("provider") in (CUDA, "cuda"):
            parts.append(f"{len(config['env'].get('CUDA_VISIBLE_DEVICES', '').split(','))} GPU device request")
    if config.get("note"):
        parts.append(config["note"])
    return "; ".join(parts) or None


def preexec(config: Mapping[str, Any] | None, cgroup: Path | None) -> Any:
    """The function a child runs before exec to take its limits (None when it has none): only system calls, so it
    is safe between fork and exec."""
    if not config or ("cpus" not in config and "memory_bytes" not in config):
        return None
    cpus = set(config.get("cpus") or [])
    memory = config.get("memory_bytes") if config.get("memory_via") == "rlimit" else None
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else None

    def apply() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if memory:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if procs:
            with open(procs, "w") as handle:
                handle.write("0")

    return apply


def make_cgroup(config: Mapping[str, Any] | None, name: str) -> Path | None:
    """A cgroup v2 group with the deployment's ``memory.max`` (for ``memory_via="cgroup"``), made before it starts."""
    if not config or config.get("memory_via") != "cgroup":
        return None
    parent = cgroup_parent()
    if parent is None:
        raise InvalidInput("The cgroup v2 memory controller this deployment was started under is gone: redeploy it.")
    folder = parent / f"mlops-{re.sub(r'[^a-z0-9-]', '-', name.lower())}"
    folder.mkdir(exist_ok=True)
    (folder / "memory.max").write_text(str(config["memory_bytes"]))
    if (folder / "memory.swap.max").exists():  # the limit is on memory, not on memory plus swap
        (folder / "memory.swap.max").write_text("0")
    return folder


def memory_exceeded(config: Mapping[str, Any] | None, returncode: int | None, log_tail: str) -> str | None:
    """Why a deployment process with a memory limit died, when it is that limit: its own exit code for it, a
    memory error at the end of its log, or a kill by the OOM killer of its cgroup. None otherwise."""
    if not config or "memory_bytes" not in config:
        return None
    limit = f"{MEMORY_EXCEEDED} of {size(config['memory_bytes'])} ({config.get('memory', '')}, by "
    limit += f"{METHODS.get(config.get('memory_via', ''), 'the container engine')})"
    if returncode == MEMORY_EXIT_CODE:
        return limit
    if returncode is not None and returncode < 0:  # a signal: the OOM killer's only where a cgroup limits it
        return f"{limit}: killed by the kernel's OOM killer" if returncode == -9 and _oom_killed(config) else None
    own = [line for line in log_tail.splitlines() if line.strip() and "supervisor (" not in line][-5:]
    found = [line for line in own if any(m in line for m in _MEMORY_ERRORS)]
    return f"{limit}: {found[-1].strip()[:200]}" if found else None


def _oom_killed(config: Mapping[str, Any]) -> bool:
    return config.get("memory_via") == "cgroup"


# -- in the endpoint's workers -------------------------------------------------------------------------------------
def resident_bytes() -> int:
    """This process's resident memory (``/proc/self/statm``), 0 where it cannot be read."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def model_bytes(folder: Path) -> int:
    """What a model's files hold: a loaded model takes at least that much."""
    if folder.is_file():
        return folder.stat().st_size
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.suffix not in (".txt", ".yaml", ".md"))


def check_loaded(config: Mapping[str, Any] | None, grew: int, files: int) -> str:
    """The resident size of a model just loaded (what the worker's memory grew by, at least its files); an
    InvalidInput naming both figures when it exceeds the deployment's memory limit."""
    taken = max(grew, files)
    limit = (config or {}).get("memory_bytes")
    if limit is not None and taken > limit:
        raise InvalidInput(
            f"The model takes {size(taken)} resident once loaded (the worker grew by {size(max(grew, 0))}, its files "
            f"hold {size(files)}), more than its memory limit of {size(limit)} (memory={config['memory']!r}): "  # type: ignore[index]
            f"deploy it with memory of at least {size(taken * 1.25)}."
        )
    return size(taken)


__all__ = [
    "CPU",
    "CUDA",
    "DEVICE_ENV",
    "ENV",
    "MEMORY_EXCEEDED",
    "MEMORY_EXIT_CODE",
    "GpuSupport",
    "Placement",
    "Resources",
    "check_loaded",
    "detect",
    "from_env",
    "from_flags",
    "limits_text",
    "memory_exceeded",
    "parse",
    "place",
    "plan",
    "process_limits",
    "serving",
]
