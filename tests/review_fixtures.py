"""Small gradebooks for the review tests, made without running a notebook (as in test_manual.py):
results with manual items are recorded directly, with their result.json written where a batch
would put it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.course.gradebook import Gradebook, SubmissionRecord
from grader.steps.results import GradeResult, ManualItem, SubtaskScore, write_result


@dataclass(frozen=True)
class ItemSpec:
    id: str
    subtask: str
    max_points: float
    prompt: str
    reference: str


def make_gradebook(out: Path, items: Sequence[ItemSpec], answers: dict[str, dict[str, str]],
                   *, names: dict[str, str] | None = None, comments: dict[str, dict[str, str]] | None = None,
                   assignment: str = "") -> Path:
    """``answers``: {submission id: {item id: text}}; an item missing for a submission is an empty
    answer. Returns the gradebook's path (``out/gradebook.sqlite``, out_dir recorded)."""
    path = out / "gradebook.sqlite"
    with Gradebook(path) as gb:
        gb.set_meta("out_dir", str(out))
        for sid, by_item in answers.items():
            subtasks: dict[str, SubtaskScore] = {}
            for it in items:
                s = subtasks.get(it.subtask, SubtaskScore())
                subtasks[it.subtask] = SubtaskScore(s.auto_points, s.auto_max, s.manual_max + it.max_points)
            manual = tuple(
                ManualItem(it.id, it.subtask, it.max_points, it.prompt, answer=by_item.get(it.id, ""),
                           hints=("no answer written",) if not by_item.get(it.id, "").strip() else (), reference=it.reference)
                for it in items
            )
            result = GradeResult(
                submission=sid, status="graded", assignment=assignment, auto_points=0.0, auto_max=0.0,
                manual_max=sum(it.max_points for it in items), subtasks=subtasks, manual=manual,
                comments=(comments or {}).get(sid, {}),
            )
            gb.upsert_submission(SubmissionRecord(id=sid, content_hash=f"h-{sid}", name=(names or {}).get(sid, "")))
            result_path = write_result(out / sid, result)
            gb.record_run(sid, f"h-{sid}", "r1", result, result_path, seconds=1.0, batch_id="b1")
    return path


# --- a server and a browser for the page tests (and benchmarks/review_scoring.py) ------------------

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
    "--disable-default-apps", "--disable-extensions",
]


def find_chromium() -> str | None:
    """The system's Chromium (Debian's package), never a browser Playwright downloads: a test
    tool's own browser download does not work on the course machines."""
    import os
    import shutil

    given = os.environ.get("GRADER_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


class ServerThread:
    """The review app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: object) -> None:
        import socket

        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))  # type: ignore[arg-type]
        self._thread: object = None

    def __enter__(self) -> ServerThread:
        import threading
        import time

        thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        thread.start()
        self._thread = thread
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the review server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        import threading

        self.server.should_exit = True
        if isinstance(self._thread, threading.Thread):
            self._thread.join(timeout=15)
        self._sock.close()

    def url(self, token: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{token}/{path}"
