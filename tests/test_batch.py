"""The batch runner: parallel workers, failures that stay local, resume after kill -9, outputs.

The grade function here is a fake (the real pipeline is tested elsewhere): it reads what to do from
the notebook's metadata (crash, raise, hang, sleep) and returns a plausible ``GradeResult``. It is
module-level so that it pickles into the spawned workers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.course.batch import run_batch
from grader.course.gradebook import Gradebook, ManualScore
from grader.course.moodle import Submission, ingest
from grader.course.outputs import grades_rows, summary_table, write_grades_csv
from grader.course.pool import (
    BatchOptions,
    available_cpus,
    core_slots,
    default_workers,
    kernel_env,
    longest_first,
)
from grader.course.progress import Progress
from grader.steps.results import (
    CheckResult,
    GradeResult,
    ManualItem,
    Note,
    SubtaskScore,
    result_from_json,
    write_result,
)

TESTS = Path(__file__).parent


def fake_grade(notebook: Path, out_dir: Path) -> GradeResult:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    spec = nb.get("metadata", {}).get("fake", {})
    behaviour = spec.get("behaviour", "ok")
    if spec.get("pid_file"):
        with open(spec["pid_file"], "a") as fh:
            fh.write(f"{os.getpid()}\n")
    if spec.get("tmp_dir_file"):  # stands in for a kernel's work folder
        Path(spec["tmp_dir_file"]).write_text(tempfile.mkdtemp(prefix="fake-kernel-"))
    time.sleep(float(spec.get("sleep", 0.0)))
    if behaviour == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if behaviour == "raise":
        raise RuntimeError("the fake grader broke")
    if behaviour == "hang":
        child = subprocess.Popen(["sleep", "600"])  # stands in for the kernel
        Path(spec["child_pid_file"]).write_text(str(child.pid))
        time.sleep(600)
    score = float(spec.get("score", 3.0))
    checks = (
        CheckResult("tok", "2.1", "passed" if score >= 1 else "failed", min(score, 1.0), 1.0),
        CheckResult("collator", "2.1", "passed" if score >= 3 else "failed", 2.0 if score >= 3 else 0.0, 2.0),
        CheckResult("args", "3.2", "passed" if score >= 4 else "failed", 1.0 if score >= 4 else 0.0, 1.0),
    )
    auto = sum(c.points for c in checks)
    result = GradeResult(
        submission=notebook.stem,
        status="graded",
        source=str(notebook),
        assignment="fake",
        auto_points=auto,
        auto_max=4.0,
        manual_max=4.0,
        subtasks={
            "1.1": SubtaskScore(0.0, 0.0, 3.0),
            "2.1": SubtaskScore(sum(c.points for c in checks[:2]), 3.0, 1.0),
            "3.2": SubtaskScore(checks[2].points, 1.0, 0.0),
        },
        checks=checks,
        manual=(ManualItem("1.1", "1.1", 3.0, "Explain copying", answer="a is a distribution"),
                ManualItem("2.1.fields", "2.1", 1.0, "What are the fields?", answer="sent1, sent2")),
        notes=(Note("info", f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"),
               Note("info", f"cores={sorted(os.sched_getaffinity(0))}")),
        comments={"1.1": "peer: fine"},
    )
    write_result(out_dir, result)
    (out_dir / "report.html").write_text(f"<html>report for {notebook.stem}</html>", encoding="utf-8")
    return result


def write_nb(path: Path, code: str = "x = 1", **fake: object) -> Path:
    nb = new_notebook(cells=[new_markdown_cell("# A3"), new_code_cell(code)])
    if fake:
        nb.metadata["fake"] = fake
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def subs_for(folder: Path) -> list[Submission]:
    return list(ingest(folder, folder / "unused").submissions)


def test_kernel_env_and_sizing() -> None:
    env = kernel_env(1)
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1" and env["TOKENIZERS_PARALLELISM"] == "false"
    assert kernel_env(3)["OPENBLAS_NUM_THREADS"] == "3"
    assert default_workers(1, memory_per_kernel_gib=0) >= 1
    assert default_workers(1, memory_per_kernel_gib=10**6) == 1  # memory bounds the pool


def test_batch_isolates_failures(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, score in enumerate((4, 3, 1)):
        write_nb(src / f"ok{i}.ipynb", code=f"v{i} = {i}", score=score)
    write_nb(src / "crash.ipynb", behaviour="crash")
    write_nb(src / "raise.ipynb", behaviour="raise")
    out = tmp_path / "out"
    stream = io.StringIO()
    with Gradebook(out / "gradebook.sqlite") as gb:
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1",
                            options=BatchOptions(workers=2), progress=Progress(5, stream=stream, tty=False))
        assert summary.workers == 2
        by_id = {o.submission.id: o.result for o in summary.outcomes}
        assert sorted(by_id) == ["crash", "ok0", "ok1", "ok2", "raise"]
        assert by_id["crash"].status == "error" and by_id["crash"].error_kind == "grader"
        assert "died" in by_id["crash"].error and "SIGKILL" in by_id["crash"].error
        assert by_id["raise"].error_kind == "grader" and "RuntimeError: the fake grader broke" in by_id["raise"].error
        assert [by_id[f"ok{i}"].auto_points for i in range(3)] == [4.0, 3.0, 1.0]
        assert all(by_id[f"ok{i}"].submission == f"ok{i}" for i in range(3))
        # Every kernel got its share of the cores.
        assert all(Note("info", "OMP_NUM_THREADS=1") in by_id[f"ok{i}"].notes for i in range(3))
        for sid in by_id:
            on_disk = result_from_json(json.loads((out / sid / "result.json").read_text()))
            assert on_disk.status == by_id[sid].status
        assert gb.run_count() == 5
        assert len(summary.harness_failures) == 2

        # A second run: unchanged graded submissions are skipped, harness failures are retried.
        t0 = time.monotonic()
        again = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2))
        skipped = sorted(o.submission.id for o in again.outcomes if o.skipped)
        assert skipped == ["ok0", "ok1", "ok2"]
        assert sorted(o.submission.id for o in again.graded) == ["crash", "raise"]
        assert gb.run_count() == 7 and gb.run_count("ok0") == 1
        assert time.monotonic() - t0 < 30

        # --force grades everything again; a changed rubric too.
        forced = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2, force=True))
        assert not any(o.skipped for o in forced.outcomes)
    lines = stream.getvalue().splitlines()
    assert any("ok0" in line and "4/4 auto" in line for line in lines)
    assert any(line.startswith("done 3/5") and "failed 2" in line for line in lines)


def test_unchanged_batch_regrade_is_fast(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        write_nb(src / f"s{i:02d}.ipynb", code=f"v = {i}")
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as gb:
        run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2))
        t0 = time.monotonic()
        again = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2))
        per = (time.monotonic() - t0) / 20
    assert all(o.skipped for o in again.outcomes)
    assert per < 0.5, f"{per:.3f} s per unchanged submission"


def test_changed_notebook_is_regraded_and_missing_result_restored(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "a.ipynb", score=1)
    write_nb(src / "b.ipynb", score=1)
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as gb:
        run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=1))
        write_nb(src / "a.ipynb", score=4)  # a resubmission
        (out / "b" / "result.json").unlink()  # outputs lost: b has no report to copy back, grade again
        again = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=1))
        graded = {o.submission.id: o.result.auto_points for o in again.graded}
        assert graded == {"a": 4.0, "b": 1.0}
        assert (out / "b" / "result.json").exists()


def test_hard_timeout_kills_worker_and_its_kernel(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    child_file = tmp_path / "child.pid"
    tmp_dir_file = tmp_path / "tmpdir.txt"
    write_nb(src / "hang.ipynb", behaviour="hang", child_pid_file=str(child_file), tmp_dir_file=str(tmp_dir_file))
    write_nb(src / "fine.ipynb", score=4)
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as gb:
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1",
                            options=BatchOptions(workers=2, hard_timeout_s=3.0))
    by_id = {o.submission.id: o.result for o in summary.outcomes}
    assert by_id["fine"].status == "graded"
    assert by_id["hang"].status == "error" and by_id["hang"].kernel_status == "deadline"
    assert "batch limit of 3 s" in by_id["hang"].error
    child = int(child_file.read_text())
    assert _gone(child), "the hanging worker's child process survived"
    left = Path(tmp_dir_file.read_text())
    assert "grader-batch-" in str(left) and not left.exists(), "the killed worker's folders were left behind"
    assert not left.parent.parent.exists()  # the batch's own folder too


def _cores(result: GradeResult) -> list[int]:
    return next(json.loads(n.message[len("cores="):]) for n in result.notes if n.message.startswith("cores="))


@pytest.mark.parametrize("pin", [True, False])
def test_workers_and_their_kernels_are_pinned_to_cores_of_their_own(pin: bool, tmp_path: Path) -> None:
    if available_cpus() < 2 or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        write_nb(src / f"s{i}.ipynb", code=f"v = {i}", sleep=0.3)
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as gb:
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1",
                            options=BatchOptions(workers=2, pin_kernels=pin))
    cores = [_cores(o.result) for o in summary.outcomes]
    if pin:
        assert all(len(c) == 1 for c in cores), cores
        assert len({c[0] for c in cores}) == 2, cores  # two workers, two different cores
    else:
        assert all(c == sorted(os.sched_getaffinity(0)) for c in cores), cores


def test_core_slots_and_order() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    slots = core_slots(len(cpus), 1)
    assert slots is not None and sorted(c for s in slots for c in s) == cpus
    assert core_slots(len(cpus) + 1, 1) is None  # more kernels than cores: nobody is pinned
    assert core_slots(1, len(cpus) + 1) is None


def test_largest_notebook_goes_first(tmp_path: Path) -> None:
    write_nb(tmp_path / "small.ipynb", code="x = 1")
    write_nb(tmp_path / "big.ipynb", code="x = 1\n" * 2000)
    write_nb(tmp_path / "mid.ipynb", code="x = 1\n" * 200)
    subs = [Submission(id=n, notebook=tmp_path / f"{n}.ipynb") for n in ("small", "big", "mid")]
    subs.append(Submission(id="none", notebook=None))
    assert [s.id for s in longest_first(subs)] == ["big", "mid", "small", "none"]


def _gone(pid: int, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of someone else still answers kill(0): look at its state
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


# --- kill -9 and resume -------------------------------------------------------------------------------

KILL_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_batch
from grader.course.batch import run_batch
from grader.course.pool import BatchOptions
from grader.course.gradebook import Gradebook
src, out = Path({src!r}), Path({out!r})
with Gradebook(out / "gradebook.sqlite") as gb:
    run_batch(test_batch.subs_for(src), out, test_batch.fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2))
"""


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pid_file = tmp_path / "workers.pid"
    n = 10
    for i in range(n):
        write_nb(src / f"s{i:02d}.ipynb", code=f"v = {i}", sleep=0.6, pid_file=str(pid_file))
    out = tmp_path / "out"
    out.mkdir()
    script = KILL_SCRIPT.format(tests=str(TESTS), src=str(src), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "gradebook.sqlite"
    deadline = time.monotonic() + 60
    done_before = 0
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with contextlib.closing(sqlite3.connect(db)) as c:
                    done_before = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            except sqlite3.OperationalError:
                done_before = 0
        if done_before >= 3:
            break
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)
    assert done_before >= 3, "the batch did not get going"
    proc.kill()  # SIGKILL: no cleanup of any kind
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()
    workers = {int(x) for x in pid_file.read_text().split()}
    assert workers and all(_gone(pid) for pid in workers), "workers outlived the killed batch"
    left = list(Path(tempfile.gettempdir()).glob(f"grader-batch-{proc.pid}-*"))
    assert left, "the killed batch had no temporary folder of its own"

    with Gradebook(db) as gb:
        committed = gb.run_count()
        assert committed < n
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2))
        skipped = [o for o in summary.outcomes if o.skipped]
        assert len(skipped) == committed
        assert gb.run_count() == n
        for i in range(n):
            assert gb.run_count(f"s{i:02d}") == 1
            assert (out / f"s{i:02d}" / "result.json").exists()
    assert not any(p.exists() for p in left), "the next batch did not remove the killed batch's folder"


# --- outputs --------------------------------------------------------------------------------------------


def test_grades_csv_and_summary_table(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "alice.ipynb", score=4)
    write_nb(src / "bob.ipynb", score=1)
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as gb:
        summary = run_batch(subs_for(src), out, fake_grade, gb, rubric_hash="r1", options=BatchOptions(workers=2))
        gb.set_manual("alice", "1.1", ManualScore(2.5, "good", 3.0), source="test")
        entries = gb.entries()
        write_grades_csv(entries, out / "grades.csv")
        table = summary_table(summary, entries)
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))
    assert rows[0] == ["id", "name", "1.1", "2.1", "3.2", "auto_points", "manual_points", "total"]
    assert rows[1] == ["alice", "alice", "2.5", "3", "1", "4", "2.5", "6.5"]
    assert rows[2] == ["bob", "bob", "0", "1", "0", "1", "0", "1"]
    assert "alice" in table and "6.5" in table
    header, _ = grades_rows(entries)
    assert header[:2] == ["id", "name"] and header[-3:] == ["auto_points", "manual_points", "total"]


def test_progress_tty_updates_in_place() -> None:
    stream = io.StringIO()
    p = Progress(3, stream=stream, tty=True)
    p.set_workers(2)
    p.started("a")
    p.finished("a", "Ada", GradeResult(submission="a", status="graded", auto_points=2, auto_max=4), 1.0)
    p.started("b")
    p.tick()
    text = stream.getvalue()
    assert "\r\x1b[K" in text
    assert "done 1/3" in p.status_line() and "running 1" in p.status_line() and "ETA" in p.status_line()
    eta = p.eta()
    assert eta is not None and eta >= 0
    p.close()


def test_cli_batch_on_moodle_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_moodle import make_moodle_zip

    from grader.cli.commands.batch import run

    zip_path = make_moodle_zip(tmp_path / "download.zip")
    out = tmp_path / "out"
    args = argparse.Namespace(source=zip_path, out=out, workers=2, gradebook=None, force=False, threads_per_kernel=1,
                              hard_timeout=600.0, rubric=None, template=None, no_similarity=False)
    assert run(args, grade_fn=fake_grade) == 0
    for pid in ("1234567", "2345678", "3456789", "4567890", "5678901", "6789012"):
        assert (out / pid / "result.json").exists()
    pdf = result_from_json(json.loads((out / "4567890" / "result.json").read_text()))
    assert pdf.status == "error" and pdf.error_kind == "bad_input" and "report.pdf" in pdf.error
    group = result_from_json(json.loads((out / "2345678" / "result.json").read_text()))
    assert group.team == ("Ada Lovelace", "Alan Turing")
    two = result_from_json(json.loads((out / "3456789" / "result.json").read_text()))
    assert any("A3-Copy1.ipynb" in n.message for n in two.notes)
    with (out / "grades.csv").open(encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert rows["1234567"]["name"] == "José García, Jr."
    assert rows["4567890"]["total"] == "0"
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<svg" in page and "José García, Jr." in page and 'href="4567890/result.json"' in page
    assert page.index("4567890") < page.index("1234567")  # the submission that could not be graded comes first
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert (out / "similarity.json").exists()
    printed = capsys.readouterr().out
    assert "bad input" in printed and "6 submission(s)" in printed

    # Back to Moodle: the worksheet and the feedback zip.
    from test_moodle import HEADER, make_worksheet

    from grader.cli.commands.export import run as export

    sheet = make_worksheet(tmp_path / "worksheet.csv")
    filled = tmp_path / "filled.csv"
    fb_zip = tmp_path / "feedback.zip"
    code = export(argparse.Namespace(moodle_worksheet=sheet, out=filled, feedback_zip=fb_zip, grades=None, gradebook=out))
    assert code == 0
    printed = capsys.readouterr().out
    assert "Participant 8888888" in printed  # listed as unmatched
    assert "matched by team name: worksheet participant 7777777 -> submission 2345678" in printed
    with filled.open(encoding="utf-8-sig", newline="") as fh:
        cells = {r[0]: r for r in csv.reader(fh)}
    grade, feedback = HEADER.index("Grade"), HEADER.index("Feedback comments")
    assert cells["Participant 1234567"][grade] == "3.00"
    assert "Total: 3 / 8 points" in cells["Participant 1234567"][feedback]
    assert cells["Participant 7777777"][grade] == cells["Participant 2345678"][grade]
    assert cells["Participant 8888888"][grade] == ""
    import zipfile

    with zipfile.ZipFile(fb_zip) as zf:
        names = set(zf.namelist())
    assert "José García, Jr._1234567_assignsubmission_file_/report.html" in names
    assert "Zoë van der Berg_5678901_assignsubmission_file_/report.html" in names
    assert not any(n.startswith("Bob O'Neil") for n in names)  # no report: PDF only, listed instead


def test_overview_page(tmp_path: Path) -> None:
    from grader.course.gradebook import SubmissionRecord
    from grader.reports.overview import check_rates, histogram, write_overview

    gb = Gradebook(tmp_path / "gradebook.sqlite")
    for sid, score in (("a", 4), ("b", 3), ("c", 1)):
        gb.upsert_submission(SubmissionRecord(id=sid, content_hash=sid, name="<script>alert(1)</script>" if sid == "a" else sid))
        res = fake_grade(write_nb(tmp_path / f"{sid}.ipynb", score=score), tmp_path / sid)
        gb.record_run(sid, sid, "r", res, tmp_path / sid / "result.json", seconds=1.0, batch_id="b")
    broken = GradeResult(submission="z", status="error", error="the file is not valid JSON", error_kind="bad_input")
    gb.upsert_submission(SubmissionRecord(id="z", content_hash="z"))
    gb.record_run("z", "z", "r", broken, write_result(tmp_path / "z", broken), seconds=0.0, batch_id="b")
    rates = check_rates(gb.entries())
    assert [r.id for r in rates] == ["args", "collator", "tok"]  # most failed first
    assert (rates[0].passed, rates[0].failed) == (1, 2)
    bars = histogram([0.0, 4.0, 8.0, 8.0], 8.0, bins=4)
    assert [b.count for b in bars] == [1, 0, 1, 2]
    page = write_overview(gb, tmp_path).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert page.index("the file is not valid JSON") < page.index('href="a/report.html"')
    assert 'href="z/result.json"' in page
    assert "manual item(s) not scored yet" in page


def test_cli_batch_on_a_plain_folder_names_what_it_does_not_grade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.commands.batch import run

    src = tmp_path / "src"
    src.mkdir()
    write_nb(src / "alice.ipynb", score=4)
    write_nb(src / "bob.txt", score=3)  # a notebook saved under another name: graded
    for i in range(7):
        (src / f"data{i}.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    out = tmp_path / "out"
    args = argparse.Namespace(source=src, out=out, workers=1, gradebook=None, force=False, threads_per_kernel=1,
                              hard_timeout=600.0, rubric=None, template=None, no_similarity=True)
    assert run(args, grade_fn=fake_grade) == 0
    assert (out / "alice" / "result.json").exists() and (out / "bob" / "result.json").exists()
    err = capsys.readouterr().err
    assert "7 file(s) hold no notebook and are not graded: data0.csv, data1.csv, data2.csv, data3.csv, data4.csv and 2 more" in err
