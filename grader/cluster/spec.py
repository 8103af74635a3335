"""What ``--cluster`` names: ``local``, a running scheduler (``tcp://HOST:PORT``), or a cluster file.

A cluster file describes batch-system jobs that dask-jobqueue submits (Slurm only for now). It is
validated here, before anything is submitted, because a typo found by ``sbatch`` costs a round trip
through the queue; every error names the file and the key, with a "did you mean" hint.

Why one worker thread per worker process: a worker grades one submission at a time (one kernel,
one temp folder, one environment), exactly like a process of the local pool. A job therefore runs
``processes`` workers, books ``cores`` CPUs for them (Slurm's ``--cpus-per-task``) and gives each
worker ``gpus / processes`` units of the ``GPU`` resource that GPU submissions ask for.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

SCHEMA_VERSION = 1
DEFAULT_WAIT_S = 60.0  # a running scheduler or a local cluster: workers are there or will not come
DEFAULT_JOB_WAIT_S = 900.0  # batch jobs may sit in the queue for a while

_ADDRESS = re.compile(r"^(tcp|tls)://\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|K|M|G|T)$", re.IGNORECASE)
_WALLTIME = re.compile(r"^(\d+-\d{1,2}:\d{2}(:\d{2})?|\d{1,4}:\d{2}(:\d{2})?)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ClusterConfigError(ValueError):
    """A ``--cluster`` value or cluster file that cannot work; the message names the file and key."""


@dataclass(frozen=True)
class JobqueueSpec:
    """A validated cluster file: one batch job = ``processes`` Dask workers of one thread each."""

    path: Path
    cores: int
    memory: str
    walltime: str
    scheduler: Literal["slurm"] = "slurm"
    queue: str | None = None
    account: str | None = None
    gpus: int = 0
    processes: int = 1
    jobs: int = 1
    job_extra_directives: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    python: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    interface: str | None = None
    wait_for_workers: float = DEFAULT_JOB_WAIT_S

    @property
    def gpus_per_worker(self) -> int:
        return self.gpus // self.processes

    def jobqueue_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``dask_jobqueue.SLURMCluster``.

        ``cores=processes`` gives every worker one thread; ``job_cpu`` books the job's real CPUs,
        which the kernels use (see ``--threads-per-kernel``).
        """
        directives = list(self.job_extra_directives)
        if self.gpus and not any("gres" in d or "gpus" in d for d in directives):
            directives.append(f"--gres=gpu:{self.gpus}")
        prologue = [f"export {k}={shlex.quote(v)}" for k, v in self.environment] + list(self.prologue)
        worker_args = ["--resources", f"GPU={self.gpus_per_worker}"] if self.gpus else []
        worker_args += _lifetime_args(self.walltime)
        kwargs: dict[str, Any] = {
            "cores": self.processes,
            "processes": self.processes,
            "job_cpu": self.cores,
            "memory": self.memory,
            "walltime": self.walltime,
            "queue": self.queue,
            "account": self.account,
            "job_extra_directives": directives,
            "job_script_prologue": prologue,
            "worker_extra_args": worker_args,
            "local_directory": self.local_directory,
            "log_directory": self.log_directory,
            "interface": self.interface,
            "python": self.python,
        }
        return {k: v for k, v in kwargs.items() if v is not None}


@dataclass(frozen=True)
class ClusterSpec:
    """Where the batch's Dask workers come from."""

    kind: Literal["local", "address", "jobqueue"]
    address: str | None = None
    jobqueue: JobqueueSpec | None = None
    wait_for_workers: float = DEFAULT_WAIT_S
    label: str = field(default="", compare=False)


def parse_cluster(value: str) -> ClusterSpec:
    """Turn the ``--cluster`` value into a spec; ``ClusterConfigError`` says what is wrong."""
    value = value.strip()
    if value == "local":
        return ClusterSpec(kind="local", label="local")
    if "://" in value:
        if not _ADDRESS.match(value):
            raise ClusterConfigError(f"--cluster {value!r}: a scheduler address looks like tcp://HOST:PORT")
        return ClusterSpec(kind="address", address=value, label=value)
    path = Path(value)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        job = load_cluster_file(path)
        return ClusterSpec(kind="jobqueue", jobqueue=job, wait_for_workers=job.wait_for_workers, label=str(path))
    raise ClusterConfigError(f"--cluster {value!r}: expected 'local', tcp://HOST:PORT or a cluster file (.yaml)")


def walltime_seconds(walltime: str) -> int:
    """A Slurm time in seconds: ``MM:SS``, ``HH:MM:SS``, ``D-HH:MM`` or ``D-HH:MM:SS`` (as ``sbatch -t``)."""
    days, _, clock = walltime.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 3600 + minutes * 60 + seconds


def _lifetime_args(walltime: str) -> list[str]:
    """Workers retire on their own before Slurm kills the job at its walltime: their submissions go
    back to the queue as a clean hand-over, where a kill would count against Dask's allowed failures.
    The margin leaves a notebook in progress time to be re-queued; staggered, so a job's workers do
    not all leave at once."""
    total = walltime_seconds(walltime)
    if total < 1800:
        return []
    margin = min(900, total // 4)
    return ["--lifetime", f"{total - margin}s", "--lifetime-stagger", f"{min(300, margin // 3)}s"]


# --- the cluster file ----------------------------------------------------------------------------------

_KEYS = {
    "schema_version", "scheduler", "queue", "account", "cores", "memory", "walltime", "gpus", "processes",
    "jobs", "job_extra_directives", "prologue", "environment", "python", "local_directory", "log_directory",
    "interface", "wait_for_workers",
}
_REQUIRED = ("cores", "memory", "walltime")


def load_cluster_file(path: Path) -> JobqueueSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClusterConfigError(f"{path}: cannot read the cluster file ({exc.strerror or exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClusterConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ClusterConfigError(f"{path}: expected a mapping of keys (cores, memory, walltime, ...), found {type(data).__name__}")
    return _from_mapping(path, data)


def _from_mapping(path: Path, data: dict[Any, Any]) -> JobqueueSpec:
    v = _Validator(path)
    for key in data:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), sorted(_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(sorted(_KEYS))})"
            raise ClusterConfigError(f"{path}: unknown key '{key}'{hint}")
    for key in _REQUIRED:
        if data.get(key) is None:
            raise ClusterConfigError(f"{path}: key '{key}' is required (see docs/CLUSTER.md for an example)")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ClusterConfigError(f"{path}: key 'schema_version': {version!r} is not supported (this grader reads {SCHEMA_VERSION})")
    scheduler = data.get("scheduler", "slurm")
    if scheduler != "slurm":
        raise ClusterConfigError(f"{path}: key 'scheduler': {scheduler!r} is not supported; only 'slurm' is")

    gpus = v.integer(data, "gpus", 0, minimum=0)
    processes = v.integer(data, "processes", max(1, gpus), minimum=1)
    cores = v.integer(data, "cores", None, minimum=1)
    if cores < processes:
        raise ClusterConfigError(f"{path}: key 'cores': {cores} CPUs cannot hold {processes} worker processes (one each at least)")
    if gpus and gpus % processes:
        raise ClusterConfigError(f"{path}: key 'gpus': {gpus} GPU(s) cannot be shared evenly among {processes} worker processes; make 'processes' divide 'gpus'")
    memory = v.text(data, "memory")
    if memory is None or not _MEMORY.match(memory):
        raise ClusterConfigError(f"{path}: key 'memory': {data['memory']!r} is not a size such as '32GB' or '16GiB'")
    if isinstance(data["walltime"], int) and not isinstance(data["walltime"], bool):
        raise ClusterConfigError(f"{path}: key 'walltime': put the time in quotes (walltime: \"04:00:00\"); "
                                 f"unquoted, YAML reads it as the number {data['walltime']}")
    walltime = v.text(data, "walltime")
    if walltime is None or not _WALLTIME.match(walltime):
        raise ClusterConfigError(f"{path}: key 'walltime': {data['walltime']!r} is not a time such as '04:00:00' or '1-00:00:00'")
    wait = data.get("wait_for_workers", DEFAULT_JOB_WAIT_S)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or wait <= 0:
        raise ClusterConfigError(f"{path}: key 'wait_for_workers': expected seconds (a positive number), found {wait!r}")
    return JobqueueSpec(
        path=path,
        cores=cores,
        memory=memory,
        walltime=walltime,
        queue=v.text(data, "queue"),
        account=v.text(data, "account"),
        gpus=gpus,
        processes=processes,
        jobs=v.integer(data, "jobs", 1, minimum=1),
        job_extra_directives=v.strings(data, "job_extra_directives"),
        prologue=v.strings(data, "prologue"),
        environment=v.environment(data, "environment"),
        python=v.text(data, "python"),
        local_directory=v.text(data, "local_directory"),
        log_directory=v.text(data, "log_directory"),
        interface=v.text(data, "interface"),
        wait_for_workers=float(wait),
    )


@dataclass(frozen=True)
class _Validator:
    path: Path

    def fail(self, key: str, expected: str, found: Any) -> ClusterConfigError:
        return ClusterConfigError(f"{self.path}: key '{key}': expected {expected}, found {found!r}")

    def integer(self, data: dict[Any, Any], key: str, default: int | None, *, minimum: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "a whole number", value)
        if value < minimum:
            raise self.fail(key, f"a whole number of at least {minimum}", value)
        return value

    def text(self, data: dict[Any, Any], key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
            raise self.fail(key, "a text value", value)
        return str(value).strip()

    def strings(self, data: dict[Any, Any], key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.fail(key, "a list of text lines", value)
        return tuple(value)

    def environment(self, data: dict[Any, Any], key: str) -> tuple[tuple[str, str], ...]:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping NAME: value", value)
        out: list[tuple[str, str]] = []
        for name, val in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ClusterConfigError(f"{self.path}: key '{key}': {name!r} is not an environment variable name")
            if isinstance(val, bool) or not isinstance(val, str | int | float):
                raise ClusterConfigError(f"{self.path}: key '{key}.{name}': expected a text value, found {val!r}")
            out.append((name, str(val)))
        return tuple(out)
