"""``--cluster``: what it accepts, and the cluster file's validation (every error names file and key).

No worker runs here; the Slurm job script is rendered by dask-jobqueue itself (no Slurm needed).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from grader.cluster.spec import ClusterConfigError, parse_cluster

GOOD = """\
schema_version: 1
scheduler: slurm
queue: gpu
account: nlp-course
cores: 8
memory: 64GB
walltime: "04:00:00"
gpus: 2
jobs: 3
job_extra_directives: ["--constraint=a100"]
environment:
  GRADER_STORE: /scratch/course/store
prologue:
  - source /home/ta/nbgrade-harness/.venv/bin/activate
"""


def write(tmp_path: Path, text: str, name: str = "slurm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_local_and_address() -> None:
    assert parse_cluster("local").kind == "local"
    spec = parse_cluster("tcp://10.1.2.3:8786")
    assert spec.kind == "address" and spec.address == "tcp://10.1.2.3:8786"
    with pytest.raises(ClusterConfigError, match="tcp://HOST:PORT"):
        parse_cluster("tcp://no-port")
    with pytest.raises(ClusterConfigError, match="expected 'local'"):
        parse_cluster("slurm")


def test_cluster_file_is_read_into_jobqueue_arguments(tmp_path: Path) -> None:
    spec = parse_cluster(str(write(tmp_path, GOOD)))
    job = spec.jobqueue
    assert spec.kind == "jobqueue" and job is not None
    assert (job.cores, job.memory, job.walltime, job.gpus, job.processes, job.jobs) == (8, "64GB", "04:00:00", 2, 2, 3)
    kw = job.jobqueue_kwargs()
    # one thread per worker process: a worker grades one submission at a time; Slurm books 8 CPUs
    assert kw["cores"] == kw["processes"] == 2 and kw["job_cpu"] == 8
    # workers retire 15 minutes before the 4-hour walltime, staggered over 5 minutes
    assert kw["worker_extra_args"] == ["--resources", "GPU=1", "--lifetime", "13500s", "--lifetime-stagger", "300s"]
    assert "--gres=gpu:2" in kw["job_extra_directives"] and "--constraint=a100" in kw["job_extra_directives"]
    assert kw["job_script_prologue"][0] == "export GRADER_STORE=/scratch/course/store"


def test_job_script_as_slurm_sees_it(tmp_path: Path) -> None:
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    job = parse_cluster(str(write(tmp_path, GOOD))).jobqueue
    assert job is not None
    with dask_jobqueue.SLURMCluster(**job.jobqueue_kwargs(), scheduler_options={"dashboard_address": None}) as cluster:
        script = cluster.job_script()
    for line in ("#SBATCH -p gpu", "#SBATCH -A nlp-course", "#SBATCH --cpus-per-task=8", "#SBATCH -t 04:00:00",
                 "#SBATCH --gres=gpu:2", "export GRADER_STORE=/scratch/course/store"):
        assert line in script, script
    assert "--nthreads 1" in script and "--nworkers 2" in script and "--resources GPU=1" in script


def test_walltime_and_worker_lifetime() -> None:
    from grader.cluster.spec import _lifetime_args, walltime_seconds

    assert walltime_seconds("04:00:00") == 14400 and walltime_seconds("1-02:00:30") == 93630
    assert walltime_seconds("90:00") == 90 * 60  # Slurm reads MM:SS
    assert walltime_seconds("2-12:00") == 60 * 3600
    assert _lifetime_args("00:20:00") == []  # too short to leave a margin
    assert _lifetime_args("01:00:00") == ["--lifetime", "2700s", "--lifetime-stagger", "300s"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("core: 8", "unknown key 'core' (did you mean 'cores'?)"),
        ("memory: lots", "key 'memory': 'lots' is not a size"),
        ("walltime: four hours", "key 'walltime': 'four hours' is not a time"),
        ("walltime: 1-4", "key 'walltime': '1-4' is not a time"),
        ("walltime: 12:00:00", "key 'walltime': put the time in quotes"),
        ("gpus: -1", "key 'gpus': expected a whole number of at least 0"),
        ("gpus: 3\nprocesses: 2", "key 'gpus': 3 GPU(s) cannot be shared evenly among 2 worker processes"),
        ("cores: 1\nprocesses: 2", "key 'cores': 1 CPUs cannot hold 2 worker processes"),
        ("jobs: two", "key 'jobs': expected a whole number, found 'two'"),
        ("scheduler: pbs", "key 'scheduler': 'pbs' is not supported"),
        ("prologue: module load cuda", "key 'prologue': expected a list of text lines"),
        ("environment: {1BAD: x}", "key 'environment': '1BAD' is not an environment variable name"),
        ("schema_version: 2", "key 'schema_version': 2 is not supported"),
    ],
)
def test_bad_cluster_file_names_file_and_key(tmp_path: Path, change: str, message: str) -> None:
    base = {"cores": "8", "memory": "16GB", "walltime": "01:00:00"}
    lines = dict(base)
    for line in change.splitlines():
        key, _, value = line.partition(": ")
        lines[key] = value
    text = "\n".join(f"{k}: {v}" for k, v in lines.items()) + "\n"
    path = write(tmp_path, text)
    with pytest.raises(ClusterConfigError) as err:
        parse_cluster(str(path))
    assert str(err.value).startswith(f"{path}: "), err.value
    assert message in str(err.value)


def test_missing_required_key_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match=r"slurm.yaml: key 'walltime' is required"):
        parse_cluster(str(write(tmp_path, "cores: 4\nmemory: 8GB\n")))
    with pytest.raises(ClusterConfigError, match="not valid YAML"):
        parse_cluster(str(write(tmp_path, "cores: [4\n", "broken.yaml")))
    with pytest.raises(ClusterConfigError, match="expected a mapping"):
        parse_cluster(str(write(tmp_path, "- cores\n", "list.yaml")))
    with pytest.raises(ClusterConfigError, match="cannot read the cluster file"):
        parse_cluster(str(tmp_path / "absent.yaml"))


def test_cli_reports_a_bad_cluster_file_as_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import main

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', encoding="utf-8")
    bad = write(tmp_path, "cores: 4\nmemory: 8GB\nwalltime: 1:00:00\nqueue_name: gpu\n")
    code = main(["batch", str(src), "--out", str(tmp_path / "out"), "--cluster", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}: unknown key 'queue_name'" in err


def test_batch_parser_knows_cluster_and_gpu() -> None:
    from grader.cli.commands import batch

    parser = argparse.ArgumentParser()
    batch.register(parser.add_subparsers())
    args = parser.parse_args(["batch", "src", "--out", "o", "--cluster", "tcp://127.0.0.1:8786", "--gpu"])
    assert args.cluster == "tcp://127.0.0.1:8786" and args.gpu is True


def test_a_worker_removes_the_folders_of_dead_workers_on_its_host(tmp_path: Path) -> None:
    import subprocess

    from grader.cluster.task import WORKER_TMP_PREFIX, sweep_dead_workers

    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / f"{WORKER_TMP_PREFIX}node1-{dead.pid}"
    alive = tmp_path / f"{WORKER_TMP_PREFIX}node1-{os.getpid()}"
    other_host = tmp_path / f"{WORKER_TMP_PREFIX}node2-{dead.pid}"
    similar_host = tmp_path / f"{WORKER_TMP_PREFIX}node1-5-{dead.pid}"  # host "node1-5", not node1's pid 5
    for folder in (gone, alive, other_host, similar_host):
        (folder / "nbgrade-kernel-x").mkdir(parents=True)
    assert sweep_dead_workers(tmp_path, host="node1") == [gone]
    assert not gone.exists() and alive.exists() and other_host.exists() and similar_host.exists()
