"""Hostile submissions (``submissions/hostile__*.ipynb``) graded end to end in the sandbox.

Each sample is the solution with one hostile cell at the start of Subtask 2.4 (see
``scripts/make_hostile_samples.py``). For every case: grading ends within its deadline, the cause is
named in the result, nothing hidden was read, no process is left behind, and every subtask but 2.4
keeps the solution's points (the golden ``full-marks__solution.expected.json``). The cheat must not
score above the honest solution and its fake ``compute_metrics`` must fail the hidden check.

All samples are graded once, two at a time, in a session fixture; the tests read the results.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pools import grading_pool

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "submissions"
CASES = sorted(p.stem.removeprefix("hostile__") for p in SAMPLES.glob("hostile__*.ipynb"))
HOSTILE_SUBTASK = "2.4"  # where scripts/make_hostile_samples.py puts the hostile cell

CELL_TIMEOUT = 30.0  # the solution's slowest cell takes ~10 s on one thread
DEADLINE = 120.0  # the solution's cells take ~40 s on one thread while another notebook runs
MEMORY_GIB = 4.0
PROBE_TIMEOUT = 60.0  # not a GradeOptions setting: a copy of the rubric carries it
SLACK = 45.0  # kernel start and stop, probes, compare and reports come on top of the cells' deadline
STRAY_GRACE = 5.0  # a SIGKILLed process may take a moment to disappear from /proc
SECRET_ENV = "AWS_SECRET_ACCESS_KEY"  # a credential a grading machine may well have in its environment
EPHEMERAL_UIDS = range(2_100_000_000, 2_101_000_000)  # grader.kernel.sandbox._EPHEMERAL_UIDS

# the slowest first, so that two workers finish together
ORDER = ["infinite-loop-ignores-sigint", "infinite-loop", "sigkill-self", "fork-bomb", "snoop-files"]


def _bwrap_usable() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    from grader.kernel.sandbox import probe_capabilities

    return bool(probe_capabilities().get("bwrap"))


pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.skipif(not _bwrap_usable(), reason="bubblewrap missing or cannot create namespaces: hostile samples only run sandboxed"),
]


# --- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    uid: int
    state: str
    cmdline: str


def scan_processes(markers: tuple[str, ...] = (), uids: tuple[int, ...] | None = None) -> list[Proc]:
    """Processes that carry one of ``markers`` in their cmdline or environment, or run as one of
    ``uids`` (default: any uid of the sandbox's ephemeral range)."""
    found = []
    wanted = [m.encode() for m in markers]
    owners = EPHEMERAL_UIDS if uids is None else set(uids)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            uid = os.stat(entry.path).st_uid
            with open(f"{entry.path}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"{entry.path}/cmdline", "rb") as f:
                cmdline = f.read()
            try:
                with open(f"{entry.path}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                environ = b""
        except (OSError, IndexError):
            continue
        if uid in owners or any(m in cmdline or m in environ for m in wanted):
            found.append(Proc(int(entry.name), uid, state, cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]))
    return found


# --- grading (in a worker process) -------------------------------------------------------------


def _worker_init(secret: str) -> None:
    os.environ[SECRET_ENV] = secret


def leftovers(markers: tuple[str, ...], uids: tuple[int, ...], grace: float = STRAY_GRACE) -> list[Proc]:
    """What still runs ``grace`` seconds after grading: marked processes, or any of the kernels' uids."""
    stop = time.monotonic() + grace
    while True:
        found = [p for p in scan_processes(markers, uids) if p.state != "Z"]
        if not found or time.monotonic() > stop:
            return found
        time.sleep(0.2)


def grade_hostile(path: str, out: str, work_root: str, marker: str, hide: tuple[str, ...], port: int) -> dict[str, Any]:
    from grader.kernel.store import activate

    activate()
    import grader.kernel.sandbox
    from grader.pack.rubric import load_rubric
    from grader.steps.pipeline import GradeOptions, grade_submission

    rubric = load_rubric("assignment3")
    rubric = replace(rubric, limits=replace(rubric.limits, probe_timeout=PROBE_TIMEOUT))
    options = GradeOptions(
        cell_timeout=CELL_TIMEOUT, deadline=DEADLINE, memory_gib=MEMORY_GIB, torch_threads=1,
        env_overrides={"GRADER_TEST_PORT": str(port), "GRADER_HOSTILE_MARKER": marker},
        work_root=Path(work_root), keep_workdir=True, hide_paths=tuple(Path(h) for h in hide),
    )
    # watch (not change) which uids the kernels get, to look for their processes afterwards
    uids: list[int] = []
    make = grader.kernel.sandbox.make_kernel_manager

    def spy(*args: Any, **kwargs: Any) -> Any:
        km, report = make(*args, **kwargs)
        if km.kernel_uid is not None:
            uids.append(km.kernel_uid)
        return km, report

    grader.kernel.sandbox.make_kernel_manager = spy  # type: ignore[assignment]
    t0 = time.monotonic()
    try:
        result = grade_submission(Path(path), Path(out), options, rubric)
    finally:
        grader.kernel.sandbox.make_kernel_manager = make  # type: ignore[assignment]
    wall = time.monotonic() - t0
    workdirs = sorted(Path(work_root).glob("grader-work-*"))
    return {
        "result": result.to_json(),
        "wall": wall,
        "uids": uids,
        "strays": [p.__dict__ for p in leftovers((marker,), tuple(uids))],
        "workdir": str(workdirs[-1]) if workdirs else "",
    }


@dataclass
class World:
    """What the samples may not reach, and how to tell whether they did."""

    hidden_dir: Path  # passed in hide_paths
    visible_dir: Path  # not hidden: the snoop's control
    token: str  # in every hidden canary
    visible_token: str
    secret: str  # in the grader's environment, never the kernel's
    port: int
    listeners: list[socket.socket]


@contextlib.contextmanager
def make_world() -> Iterator[World]:
    # /var/tmp, not /tmp: the kernel's /tmp is private anyway, which would prove nothing
    hidden = Path(tempfile.mkdtemp(prefix="hostile-canary-", dir="/var/tmp"))
    visible = Path(tempfile.mkdtemp(prefix="hostile-visible-", dir="/var/tmp"))
    token, visible_token = f"canary-{secrets.token_hex(12)}", f"visible-{secrets.token_hex(12)}"
    for folder in (hidden, visible):
        folder.chmod(0o755)
    (hidden / "reference").mkdir(mode=0o755)
    for name in ("canary.txt", "gradebook.csv", "reference/hidden_answers.txt", "rubric.yaml"):
        (hidden / name).write_text(f"{token}\n")
        (hidden / name).chmod(0o644)
    (visible / "canary-visible.txt").write_text(f"{visible_token}\n")
    (visible / "canary-visible.txt").chmod(0o644)
    listeners = []
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.bind(("127.0.0.1", 0))
    port = v4.getsockname()[1]
    listeners.append(v4)
    if socket.has_ipv6:
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.bind(("::1", port))
            listeners.append(v6)
        except OSError:
            pass
    for s in listeners:
        s.listen(16)
        s.setblocking(False)
    try:
        yield World(hidden, visible, token, visible_token, secrets.token_hex(16), port, listeners)
    finally:
        for s in listeners:
            s.close()
        shutil.rmtree(hidden, ignore_errors=True)
        shutil.rmtree(visible, ignore_errors=True)


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    with make_world() as w:
        yield w


@dataclass
class Graded:
    runs: dict[str, dict[str, Any]]
    before: list[Proc]
    after: list[Proc]
    markers: dict[str, str]


def grade_all(world: World, out: Path, cases: list[str], workers: int = 2) -> Graded:
    markers = {case: f"hostile-marker-{case}-{secrets.token_hex(6)}" for case in cases}
    before = scan_processes(tuple(markers.values()), uids=())
    ordered = [c for c in ORDER if c in cases] + [c for c in cases if c not in ORDER]
    with grading_pool(workers, initializer=_worker_init, initargs=(world.secret,)) as pool:
        futures = {
            case: pool.submit(grade_hostile, str(SAMPLES / f"hostile__{case}.ipynb"), str(out / case / "out"),
                              str(out / case / "work"), markers[case], (str(world.hidden_dir),), world.port)
            for case in ordered
        }
        runs = {case: f.result() for case, f in futures.items()}
    uids = tuple(u for run in runs.values() for u in run["uids"])
    after = leftovers(tuple(markers.values()), uids)
    return Graded(runs, before, after, markers)


@pytest.fixture(scope="session")
def graded(world: World, tmp_path_factory: pytest.TempPathFactory, built_store: Path) -> Graded:
    return grade_all(world, tmp_path_factory.mktemp("hostile"), CASES)


# --- what the results should say ---------------------------------------------------------------


def solution_golden() -> dict[str, Any]:
    return json.loads((SAMPLES / "full-marks__solution.expected.json").read_text(encoding="utf-8"))


def hostile_cell_index(case: str) -> int:
    nb = json.loads((SAMPLES / f"hostile__{case}.ipynb").read_text(encoding="utf-8"))
    return next(i for i, c in enumerate(nb["cells"]) if c.get("id") == f"hostile-{case}")


def hostile_cell(case: str, result: dict[str, Any]) -> dict[str, Any]:
    index = hostile_cell_index(case)
    return next((c for c in result["cells"] if c["index"] == index), {"status": "missing", "error": ""})


def cause_named(case: str, result: dict[str, Any]) -> tuple[bool, str]:
    """Whether result.json names what the hostile cell did; and what it says."""
    cell = hostile_cell(case, result)
    said = f"kernel_status={result['kernel_status']!r} ({result['kernel_message']}); cell: {cell['status']} {cell['error']!r}"
    ok = {
        "infinite-loop": cell["status"] == "timeout",
        "infinite-loop-ignores-sigint": cell["status"] == "timeout",
        "memory-bomb": result["kernel_status"] == "memory" and "MemoryError" in cell["error"],
        "fork-bomb": cell["status"] == "error" and ("BlockingIOError" in cell["error"] or "Resource temporarily unavailable" in cell["error"]
                                                    or "processes and threads running (limit" in cell["error"]),
        # the kernel status may name a knock-on ("deadline") instead: the cell's own outcome is enough
        "print-200mb": cell["status"] == "error" and "printed more than" in cell["error"],
        "sigkill-self": result["kernel_status"] == "died" and "SIGKILL" in cell["error"],
        # these run to the end; what they could not do is checked by their own tests
        "snoop-files": cell["status"] == "ok",
        "network": cell["status"] == "ok",
        "cheat": cell["status"] == "ok",
        "forge": cell["status"] == "ok",
    }.get(case, False)
    return ok, said


def lost_outside(case: str, result: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Subtasks other than the hostile cell's own whose automatic points differ from the solution's."""
    golden = solution_golden()["subtasks"]
    got = {k: round(v["auto_points"], 3) for k, v in result["subtasks"].items()}
    return {k: (got.get(k, 0.0), v) for k, v in golden.items() if k != HOSTILE_SUBTASK and got.get(k, 0.0) != v}


def snooped(run: dict[str, Any]) -> str:
    path = Path(run["workdir"]) / "snooped.txt"
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def secret_lines_of_checks() -> list[str]:
    """Distinctive lines of the hidden checks: any of them in the snoop's file means it was read."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "rubrics" / "assignment3").glob("checks*.py")))
    return [line.strip() for line in text.splitlines() if line.strip().startswith(("def ", "@check(")) and len(line.strip()) > 24]


def private_reads(text: str, world: World) -> list[str]:
    """Files under a hidden folder that the snoop opened and copied (a header with a byte count)."""
    private = [str(world.hidden_dir)] + [str(REPO / d) for d in ("rubrics", "reference", "submissions", "tests", "build")]
    reads = []
    for line in text.splitlines():
        if line.startswith("== /") and line.endswith(" bytes)"):
            path = line[3:].rsplit(" (", 1)[0]
            if any(path == p or path.startswith(p + "/") for p in private):
                reads.append(path)
    return reads


# --- the tests ---------------------------------------------------------------------------------

# Grader bugs these samples found, each pinned by a strict xfail: remove the entry once it is fixed.
KNOWN_BUGS: dict[tuple[str, str], str] = {}  # (check, case) -> the grader bug it shows: a strict xfail until fixed


def cases(check: str, names: list[str] | None = None) -> list[Any]:
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[(check, c)]))
            if (check, c) in KNOWN_BUGS else c for c in (CASES if names is None else names)]


def test_every_case_has_a_sample() -> None:
    assert set(CASES) == {"infinite-loop", "infinite-loop-ignores-sigint", "memory-bomb", "fork-bomb", "snoop-files",
                          "network", "cheat", "print-200mb", "sigkill-self", "forge"}


@pytest.mark.parametrize("case", cases("deadline"))
def test_finishes_within_its_deadline(case: str, graded: Graded) -> None:
    run = graded.runs[case]
    assert run["result"]["status"] == "graded", run["result"]["error"]
    assert run["wall"] <= DEADLINE + SLACK, f"{case} took {run['wall']:.0f} s (deadline {DEADLINE:.0f} s)"


@pytest.mark.parametrize("case", cases("cause"))
def test_cause_is_named(case: str, graded: Graded) -> None:
    ok, said = cause_named(case, graded.runs[case]["result"])
    assert ok, f"{case}: result.json does not name the cause: {said}"


@pytest.mark.parametrize("case", cases("subtasks", [c for c in CASES if c not in ("cheat", "forge")]))
def test_other_subtasks_keep_their_points(case: str, graded: Graded) -> None:
    result = graded.runs[case]["result"]
    assert result["status"] == "graded", result["error"]
    lost = lost_outside(case, result)
    assert not lost, f"{case} changed points outside {HOSTILE_SUBTASK} (got, solution): {lost}"


@pytest.mark.parametrize("case", cases("processes"))
def test_no_process_left_behind(case: str, graded: Graded) -> None:
    run = graded.runs[case]
    assert run["uids"], "the kernel did not run as an ephemeral uid, so its processes cannot be told apart"
    assert run["strays"] == [], f"{case} left processes {STRAY_GRACE:.0f} s after grading: {run['strays']}"


def test_nothing_left_running_after_the_session(graded: Graded) -> None:
    assert graded.before == []
    assert graded.after == [], f"processes of the hostile kernels still running: {graded.after}"


def test_snoop_read_no_canary_and_no_hidden_file(graded: Graded, world: World) -> None:
    text = snooped(graded.runs["snoop-files"])
    assert text, "the snoop wrote no snooped.txt (is keep_workdir honoured?)"
    assert world.visible_token in text, "control: the snoop did not find the visible canary, so it proves nothing"
    assert world.token not in text
    assert private_reads(text, world) == []


@pytest.mark.parametrize("case", cases("checks-hidden", ["snoop-files"]))
def test_snoop_could_not_recover_the_hidden_checks(case: str, graded: Graded) -> None:
    """Not from rubrics/ (hidden), nor from a copy elsewhere such as the repository's git objects."""
    text = snooped(graded.runs[case])
    assert text
    leaked = [line for line in secret_lines_of_checks() if line in text]
    assert not leaked, f"rubrics/assignment3/checks.py reached the kernel: {len(leaked)} of its lines, e.g. {leaked[0]!r}"


@pytest.mark.parametrize("case", cases("environment", ["snoop-files"]))
def test_grader_environment_does_not_reach_the_kernel(case: str, graded: Graded, world: World) -> None:
    text = snooped(graded.runs[case])
    assert "== environment" in text
    assert world.secret not in text, f"{SECRET_ENV} from the grader's environment was visible in the kernel"


def test_network_blocked_even_to_loopback(graded: Graded, world: World) -> None:
    path = Path(graded.runs["network"]["workdir"]) / "network.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["port"] == world.port
    assert set(report["results"]) == {"127.0.0.1", "::1"}
    assert all(v.startswith("failed") for v in report["results"].values()), report
    for listener in world.listeners:
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_cheat_scores_no_more_than_the_honest_solution(graded: Graded) -> None:
    result = graded.runs["cheat"]["result"]
    golden = solution_golden()
    assert result["status"] == "graded"
    assert result["auto_points"] <= golden["auto_points"]
    for sub, points in result["subtasks"].items():
        assert points["auto_points"] <= golden["subtasks"][sub], sub
    checks = {c["id"]: c for c in result["checks"]}
    # its compute_metrics returns a constant 0.8: the toy example made fresh and other logits expose it
    assert checks["2.2.metric_logic"]["status"] == "failed" and checks["2.2.metric_logic"]["points"] == 0
    assert checks["2.2.toy_accuracy"]["status"] == "failed"


def test_cheat_fake_probe_files_are_ignored(graded: Graded) -> None:
    """The fake ``.grader-probe-*.json`` files stay where the cheat wrote them; the grader read its own."""
    result = graded.runs["cheat"]["result"]
    workdir = Path(graded.runs["cheat"]["workdir"])
    assert (workdir / ".grader-probe-latest.json").is_file()
    assert not any(n["message"].startswith("probes") for n in result["notes"])
    passed = {c["id"] for c in result["checks"] if c["status"] == "passed"}
    assert {"2.1.tokenizer", "3.3.decode", "2.4.predictions"} <= passed  # real results, honestly earned


@pytest.fixture(scope="session")
def forge_base(world: World, tmp_path_factory: pytest.TempPathFactory, built_store: Path) -> dict[str, Any]:
    """The forging sample without its forging cell: the broken code alone."""
    nb = json.loads((SAMPLES / "hostile__forge.ipynb").read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if c.get("id") != "hostile-forge"]
    out = tmp_path_factory.mktemp("forge-base")
    path = out / "forge-base.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    run = grade_hostile(str(path), str(out / "out"), str(out / "work"), f"forge-base-{secrets.token_hex(6)}",
                        (str(world.hidden_dir),), world.port)
    return dict(run["result"])


def test_forging_gains_nothing(graded: Graded, forge_base: dict[str, Any]) -> None:
    """Issue 9's attack, reproduced in full (patched json.dump/json.dumps/os.replace, a thread
    rewriting result files and planting model files, every self-report claimed): the forging
    notebook scores no more than its broken code alone, in every subtask."""
    forged = graded.runs["forge"]["result"]
    assert forged["status"] == forge_base["status"] == "graded"
    gained = {sub: (forged["subtasks"][sub]["auto_points"], base["auto_points"])
              for sub, base in forge_base["subtasks"].items() if forged["subtasks"][sub]["auto_points"] > base["auto_points"] + 1e-9}
    assert not gained, f"subtasks where forging paid (forged, broken code alone): {gained}"
    assert forged["auto_points"] <= forge_base["auto_points"]
    assert forge_base["auto_points"] < forge_base["auto_max"]  # the code is broken: there was something to forge
