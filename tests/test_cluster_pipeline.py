"""The real pipeline on a Dask ``LocalCluster`` (2 worker processes on loopback) grades a small batch
exactly as the local pool does, even when a worker is killed in the middle of a submission.

The batch: the repairable ``broken__*`` samples (tiny notebooks that run in a kernel), two unusable
files (no kernel), and two generated notebooks of the same layout, one that loads the right tokenizer
(so that some check passes) and one that loads none. Timings and paths are left out of the
comparison; scores, check statuses and messages, cells, notes and manual items are compared whole.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster

from grader.cluster.run import ClusterBatch
from grader.cluster.spec import ClusterSpec
from grader.course.batch import run_batch
from grader.course.finish import grade_with_pipeline
from grader.course.gradebook import Gradebook
from grader.course.moodle import Submission
from grader.course.pool import BatchOptions, kernel_env
from grader.course.progress import Progress
from grader.pack.rubric import load_rubric
from grader.steps.results import GradeResult

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "submissions"
BATCH = ["broken__missing-ids.ipynb", "broken__duplicate-ids.ipynb", "broken__nbformat3.ipynb",
         "broken__source-is-number.ipynb", "broken__notebook-as-txt.txt", "broken__not-json.ipynb", "broken__empty.ipynb"]

pytestmark = pytest.mark.slow


def generated(folder: Path, name: str, code: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[
        new_markdown_cell("## **Task 2: Fine-tuning a model for multiple choice**"),
        new_markdown_cell("### Subtask 1: Loading and processing the data"),
        new_code_cell(code),
    ])
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def store_env(built_store: Path) -> Iterator[None]:
    """The store activated for this process and the workers it starts; the environment restored after."""
    from grader.cli.commands.grade import prepare

    saved = dict(os.environ)
    prepare("assignment3")
    yield
    os.environ.clear()
    os.environ.update(saved)


def comparable(result: GradeResult) -> dict[str, Any]:
    data = result.to_json()
    data.pop("timings")
    data.pop("source")
    data["cells"] = [{k: v for k, v in c.items() if k != "seconds"} for c in data["cells"]]
    return data


def test_cluster_grades_like_the_local_pool_despite_a_killed_worker(tmp_path: Path, store_env: None) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in BATCH:
        shutil.copy(SAMPLES / name, src / name)
    generated(src, "gen__tokenizer.ipynb",
              'from transformers import AutoTokenizer\ntokenizer = AutoTokenizer.from_pretrained("distilbert-base-uncased")')
    generated(src, "gen__nothing.ipynb", "answer = 42")
    names = [*BATCH, "gen__tokenizer.ipynb", "gen__nothing.ipynb"]
    subs = [Submission(id=Path(name).stem, notebook=src / name, files=(name,)) for name in names]
    from grader.steps.pipeline import GradeOptions

    options = GradeOptions(rubric="assignment3", env_overrides=kernel_env(1), torch_threads=1,
                           hide_paths=(src.resolve(), tmp_path.resolve()))
    grade_fn = functools.partial(grade_with_pipeline, options=options)
    rubric_hash = load_rubric("assignment3").fingerprint()

    with Gradebook(tmp_path / "local.sqlite") as gb:
        local = run_batch(subs, tmp_path / "local", grade_fn, gb, rubric_hash=rubric_hash, options=BatchOptions(workers=2))

    killed: list[str] = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client, \
            Gradebook(tmp_path / "cluster.sqlite") as gb:
        pids: dict[str, int] = client.run(os.getpid)
        starts: Counter[str] = Counter()

        class KillFirst(Progress):
            def started(self, sid: str) -> None:
                starts[sid] += 1
                super().started(sid)
                if killed:
                    return
                for address, keys in client.processing().items():
                    if any(sid in str(k) for k in keys):
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(sid)

        progress = KillFirst(len(subs), stream=io.StringIO(), tty=False)
        batch = ClusterBatch(ClusterSpec(kind="address", address=cluster.scheduler_address, label="test"),
                             rubric_hash=rubric_hash, rubric="assignment3")
        remote = run_batch(subs, tmp_path / "cluster", grade_fn, gb, rubric_hash=rubric_hash, progress=progress, cluster=batch)
        assert killed and starts[killed[0]] >= 2, "no submission was interrupted and graded again"
        assert gb.run_count() == len(subs) and all(gb.run_count(s.id) == 1 for s in subs)
        assert progress.done == len(subs) and not progress.running

    ours = {o.submission.id: comparable(o.result) for o in remote.outcomes}
    theirs = {o.submission.id: comparable(o.result) for o in local.outcomes}
    assert sorted(ours) == sorted(theirs)
    for sid in theirs:
        assert ours[sid] == theirs[sid], sid
    graded = {sid for sid, r in ours.items() if r["status"] == "graded"}
    assert graded == {Path(n).stem for n in names} - {"broken__not-json", "broken__empty"}
    assert all(c["status"] == "ok" for sid in graded for c in ours[sid]["cells"])
    assert ours["gen__tokenizer"]["auto_points"] > ours["gen__nothing"]["auto_points"]  # the comparison sees scores
    for sid, result in ((o.submission.id, o.result) for o in remote.outcomes):
        assert result.source == str(src / next(n for n in names if Path(n).stem == sid))
        if result.status == "graded":
            assert (tmp_path / "cluster" / sid / "report.html").read_bytes() == (tmp_path / "local" / sid / "report.html").read_bytes()
