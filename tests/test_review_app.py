"""grader review without a browser: what counts as no answer, the sanitiser, the gradebook's
versions, saving (refused when stale, the same rows as the CSV/YAML sheet, outputs rewritten), the
suggestions, the token gate and the headers, and the command line."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from review_fixtures import ItemSpec, make_gradebook

from grader.course.gradebook import Gradebook, ManualScore, StaleEdit
from grader.course.manual import COLUMNS, export_sheet, import_sheet
from grader.review.clustering import Group
from grader.review.data import Answer, is_no_answer, load_review
from grader.review.markdown import render_markdown
from grader.review.scoring import Edit, save_edits
from grader.review.suggest import for_answer, for_group

ITEMS = [
    ItemSpec("q1", "1.1", 2, "Why?", "Because of the **softmax**."),
    ItemSpec("q2", "2.2", 0.5, "Which id?", "101"),
]
ANSWERS = {
    "s1": {"q1": "softmax, so they sum to one", "q2": "101"},
    "s2": {"q1": "Enter your answer here", "q2": "102"},
    "s3": {"q1": "the keys are orthogonal"},
}


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return make_gradebook(tmp_path / "out", ITEMS, ANSWERS, names={"s1": "Ada"}, comments={"s1": {"1.1": "peer: nice"}})


@pytest.mark.parametrize("text", ["", "  \n", "Enter your answer here", "**Enter your answer here**", "Answer: enter your answer here.",
                                  "`Enter your answer here`", "TODO", "..."])
def test_template_and_empty_answers_are_no_answer(text: str) -> None:
    assert is_no_answer(text)


@pytest.mark.parametrize("text", ["0", "101", "Enter your answer here: softmax", "no", "It is 0.1"])
def test_short_real_answers_are_answers(text: str) -> None:
    assert not is_no_answer(text)


def test_markdown_is_sanitised_and_keeps_math() -> None:
    html = str(render_markdown(
        "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) "
        "![pic](http://example.org/p.png) $a<b$ and $$\\frac{1}{2}$$ **bold**"
    ))
    assert "<script" not in html and "<img" not in html and "href" not in html
    assert "[x](javascript:alert(3))" in html  # not a link: markdown-it refuses the scheme, it stays text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text
    assert "onerror=alert(2)&gt;" in html  # text, not an attribute
    assert '<span class="math inline">a&lt;b</span>' in html
    assert '<span class="math display">\\frac{1}{2}</span>' in html
    assert "[image: pic http://example.org/p.png]" in html
    assert "<strong>bold</strong>" in html


def test_load_review_reads_items_answers_versions_and_peer_comments(book: Path) -> None:
    with Gradebook(book) as gb:
        gb.set_manual("s1", "q1", ManualScore(1.0, "ok", 2.0), source="sheet.csv")
        data = load_review(gb)
    assert [i.id for i in data.items] == ["q1", "q2"]
    assert data.item("q1") is not None and data.item("q1").reference == "Because of the **softmax**."  # type: ignore[union-attr]
    q1 = {a.submission: a for a in data.answers["q1"]}
    assert (q1["s1"].points, q1["s1"].version, q1["s1"].source, q1["s1"].peer_comment) == (1.0, 1, "sheet.csv", "peer: nice")
    assert q1["s2"].no_answer and not q1["s1"].no_answer
    assert (q1["s3"].points, q1["s3"].version) == (None, 0)
    assert data.students == (("s1", "Ada"), ("s2", "s2"), ("s3", "s3"))
    assert [i.id for i, _ in data.of_student("s3")] == ["q1", "q2"]


def test_a_stale_version_is_refused_in_the_gradebook(book: Path) -> None:
    with Gradebook(book) as gb:
        assert gb.set_manual("s1", "q1", ManualScore(1.0, "", 2.0), source="review: A", expected_version=0) == 1
        with pytest.raises(StaleEdit) as refused:
            gb.set_manual("s1", "q1", ManualScore(2.0, "", 2.0), source="review: B", expected_version=0)
        assert (refused.value.current.points, refused.value.current.version, refused.value.current.source) == (1.0, 1, "review: A")
        assert gb.set_manual("s1", "q1", ManualScore(2.0, "", 2.0), source="sheet.csv") == 2  # no version given: a sheet
        assert gb.manual_scores("s1")["q1"].points == 2.0
        assert gb.conn.execute("SELECT COUNT(*) FROM manual_log").fetchone()[0] == 2  # the refused edit logged nothing


def test_an_old_gradebook_gets_the_version_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as c:  # manual_scores as it was before versions
        c.execute("""CREATE TABLE manual_scores (submission_id TEXT NOT NULL, item_id TEXT NOT NULL, points REAL,
                     comment TEXT NOT NULL DEFAULT '', max_points REAL NOT NULL, content_hash TEXT NOT NULL,
                     source TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL, PRIMARY KEY (submission_id, item_id))""")
        c.execute("INSERT INTO manual_scores VALUES ('s1', 'q1', 1.5, 'kept', 2, 'h', 'sheet', 'then')")
    with Gradebook(path) as gb:
        assert gb.manual_scores("s1")["q1"] == ManualScore(1.5, "kept", 2.0, "h", version=0, source="sheet")
        assert gb.set_manual("s1", "q1", ManualScore(2.0, "", 2.0), source="review", expected_version=0) == 1


def test_saving_checks_points_like_the_sheet_and_rewrites_the_outputs(book: Path) -> None:
    out = book.parent
    with Gradebook(book) as gb:
        results, warnings = save_edits(gb, [
            Edit("s1", "q1", "1,5", " good ", 0),  # a decimal comma, as in the sheet
            Edit("s2", "q1", "3", "", 0),  # above the maximum
            Edit("s3", "q1", "-1", "", 0),  # negative
            Edit("s3", "q1", "two", "", 0),  # not a number
            Edit("s3", "q9", "1", "", 0),  # no such item
            Edit("nobody", "q1", "1", "", 0),
            Edit("s3", "q1", None, "", 0),  # nothing to write
            Edit("s2", "q2", "0", "wrong id", 0),
        ], source="review: Anna")
    assert [r.status for r in results] == ["saved", "invalid", "invalid", "invalid", "invalid", "invalid", "unchanged", "saved"]
    assert results[0].points == 1.5 and results[0].comment == "good" and results[0].version == 1
    assert results[1].message == "points 3 are above the maximum 2"
    assert results[2].message == "points -1 are negative"
    assert "is not a number" in results[3].message
    assert all("reports not" in w for w in warnings)  # no report.html for these fakes: said, not hidden
    s1 = json.loads((out / "s1" / "result.json").read_text())
    assert [(m["id"], m["points"], m["comment"]) for m in s1["manual"]] == [("q1", 1.5, "good"), ("q2", None, "")]
    grades = {r["id"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert grades["s1"]["total"] == "1.5" and grades["s2"]["2.2"] == "0"
    assert "1.5" in (out / "index.html").read_text()


def test_page_and_sheet_read_and_write_the_same_rows(book: Path, tmp_path: Path) -> None:
    with Gradebook(book) as gb:
        save_edits(gb, [Edit("s1", "q1", "2", "from the page", 0)])
        sheet = tmp_path / "sheet.csv"
        export_sheet(gb, sheet)
        rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
        assert list(rows[0]) == list(COLUMNS)
        by_cell = {(r["submission"], r["item"]): r for r in rows}
        assert (by_cell[("s1", "q1")]["points"], by_cell[("s1", "q1")]["comment"]) == ("2", "from the page")
        by_cell[("s1", "q1")]["points"] = "1"  # the sheet changes the page's score ...
        by_cell[("s3", "q1")]["points"] = "0.5"
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(by_cell.values())
        sheet.write_text(buf.getvalue(), encoding="utf-8")
        assert sorted(import_sheet(gb, sheet).imported) == [("s1", "q1"), ("s3", "q1")]
        page = {a.submission: a for a in load_review(gb).answers["q1"]}
        assert (page["s1"].points, page["s1"].version, page["s3"].points) == (1.0, 2, 0.5)  # ... and the page sees it
        # a page still showing version 1 is refused and handed the sheet's value
        (stale,), _ = save_edits(gb, [Edit("s1", "q1", "2", "from the page", 1)])
        assert (stale.status, stale.points, stale.version) == ("stale", 1.0, 2)
        assert stale.message == f"not saved: an import of {sheet} changed this meanwhile"


def answer(sid: str, text: str, points: float | None = None) -> Answer:
    return Answer(submission=sid, name=sid.upper(), item="q1", text=text, max_points=2, points=points)


def test_suggestions_come_from_the_tas_own_scores() -> None:
    vectors = np.array([[1, 0, 0], [0.99, 0.141, 0], [0.6, 0.8, 0], [0, 0, 0]], dtype=np.float32)
    answers = [answer("a", "x", 2.0), answer("b", "y"), answer("c", "z"), answer("d", "")]
    assert for_answer(0, answers, vectors) is None  # scored: nothing to suggest
    near = for_answer(1, answers, vectors)
    assert near is not None and near.points == 2.0 and "like A's answer (similarity 0.99)" in near.reason
    assert for_answer(2, answers, vectors) is None  # nothing close enough
    empty = for_answer(3, answers, vectors)
    assert empty is not None and (empty.points, empty.reason) == (0.0, "no answer written")
    group = Group(members=(0, 1, 2))
    most = for_group(group, [answer("a", "x", 2.0), answer("b", "y", 1.0), answer("c", "z", 1.0), answers[3]], vectors)
    assert most is not None and (most.points, most.reason) == (1.0, "given to 2 of 3 in this group")
    assert for_group(Group(members=(2,)), answers, vectors) is None
    assert for_group(Group(members=(3,), no_answer=True), answers, vectors) is not None
    # the rubric pack's suggestion (facts it checked) comes before a precedent, after the TA's own points
    packed = [answer("a", "x", 2.0), replace(answer("b", "y"), suggested=0.25, suggestion="mentions 101 and 103"),
              replace(answer("c", "z"), suggested=0.25), answers[3]]
    got = for_answer(1, packed, vectors)
    assert got is not None and (got.points, got.reason) == (0.25, "the grader: mentions 101 and 103")
    assert for_answer(1, packed, None) == got  # without embeddings too (no groups, student page)
    assert for_answer(0, packed, None) is None
    pack_group = for_group(Group(members=(1, 2)), packed, vectors)
    assert pack_group is not None and (pack_group.points, pack_group.reason) == (0.25, "the grader's suggestion for 2 of 2 in this group")


def test_token_gate_headers_and_save_api(book: Path) -> None:
    from starlette.testclient import TestClient

    from grader.review.app import CSP, ReviewConfig, create_app

    config = ReviewConfig(gradebook=book, grouping=False)
    with TestClient(create_app(config)) as client:
        assert client.get("/").status_code == 404
        assert client.get("/not-the-token/").status_code == 404
        assert client.get(f"/{config.token[:-1]}/").status_code == 404
        assert client.get(f"/{config.token}", follow_redirects=False).headers["location"] == f"/{config.token}/"
        page = client.get(f"/{config.token}/")
        assert page.status_code == 200 and "q1" in page.text and "Ada" in page.text
        assert page.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP and "unsafe" not in CSP
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-frame-options"] == "DENY"
        item = client.get(f"/{config.token}/item/q1")
        assert item.status_code == 200 and "peer: nice" in item.text and "<script>" not in item.text.split("</head>")[1]
        assert client.get(f"/{config.token}/item/nope").status_code == 404
        assert client.get(f"/{config.token}/student/s2").status_code == 200
        js = client.get(f"/{config.token}/static/review.js")
        assert js.status_code == 200 and js.headers["content-security-policy"] == CSP
        body = {"edits": [{"submission": "s1", "item": "q1", "points": "2", "comment": "", "version": 0}], "ta": "Anna"}
        url = f"/{config.token}/api/save"
        assert client.post(url, json=body).status_code == 403  # no token header
        assert client.post(url, json=body, headers={"X-Review-Token": "wrong"}).status_code == 403
        assert client.post(url, content=json.dumps(body), headers={"X-Review-Token": config.token, "Content-Type": "text/plain"}).status_code == 415
        assert client.post(url, json={"edits": "x"}, headers={"X-Review-Token": config.token}).status_code == 400
        ok = client.post(url, json=body, headers={"X-Review-Token": config.token})
        assert ok.status_code == 200 and ok.json()["results"][0]["status"] == "saved"
        again = client.post(url, json={**body, "edits": [{**body["edits"][0], "points": "1"}]}, headers={"X-Review-Token": config.token})
        assert again.json()["results"][0]["status"] == "stale" and again.json()["results"][0]["message"] == "not saved: Anna changed this meanwhile"
    with Gradebook(book) as gb:
        assert gb.manual_scores("s1")["q1"].source == "review: Anna"


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grader.cli.main import build_parser, main
    from grader.review.clustering import DEFAULT_THRESHOLD

    review_help = build_parser()._subparsers._group_actions[0].choices["review"].format_help()  # type: ignore[union-attr]
    assert f"default: {DEFAULT_THRESHOLD:g}," in " ".join(review_help.split())

    assert main(["review", "--gradebook", str(tmp_path / "none.sqlite")]) == 2
    assert "no gradebook" in capsys.readouterr().err
    make_gradebook(tmp_path / "out", ITEMS, ANSWERS)
    assert main(["review", "--out", str(tmp_path / "out"), "--host", "not a host"]) == 2
    assert "--host" in capsys.readouterr().err


def test_cli_serves_the_page_behind_a_token(book: Path) -> None:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "grader", "review", "--out", str(book.parent), "--port", "0", "--no-groups"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line and proc.poll() is not None:
                break
            if line.startswith("open  "):
                url = line.split()[1]
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr and proc.poll() is not None else url
        for _ in range(100):
            try:
                page = httpx.get(url + "item/q1", timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert page.status_code == 200 and "Enter your answer here" in page.text
        assert httpx.get(url.rsplit("/", 2)[0] + "/", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_rubric_bullets_and_order_come_from_the_rubric_pack(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "rubric.yaml").write_text(
        "schema_version: 1\nassignment: demo\ntitle: Demo\ntotal_points: 2.5\n"
        "subtasks:\n  - {id: '1.1', title: A, points: 2}\n  - {id: '2.2', title: B, points: 0.5}\n"
        "manual:\n"
        "  - {id: q2, subtask: '2.2', points: 0.5, prompt: 'Which id?', bullets: ['[CLS]/[MASK] id question: 0.25', 'dropout question: 0.25']}\n"
        "  - {id: q1, subtask: '1.1', points: 2, prompt: 'Why?', bullets: ['1 per question']}\n",
        encoding="utf-8",
    )
    book = make_gradebook(tmp_path / "out", ITEMS, ANSWERS, assignment=str(pack))
    with Gradebook(book) as gb:
        data = load_review(gb)
    assert [(i.id, i.bullets) for i in data.items] == [
        ("q2", ("[CLS]/[MASK] id question: 0.25", "dropout question: 0.25")), ("q1", ("1 per question",))]

    from starlette.testclient import TestClient

    from grader.review.app import ReviewConfig, create_app

    config = ReviewConfig(gradebook=book, grouping=False)
    with TestClient(create_app(config)) as client:
        page = client.get(f"/{config.token}/item/q2").text
    assert "<li>[CLS]/[MASK] id question: 0.25</li>" in page and "<li>dropout question: 0.25</li>" in page

    # A broken rubric pack costs the bullets, not the page, and the page says why.
    (pack / "rubric.yaml").write_text("schema_version: [", encoding="utf-8")
    book2 = make_gradebook(tmp_path / "out2", ITEMS, ANSWERS, assignment=str(pack) + "/")  # another name: packs are cached by name
    with Gradebook(book2) as gb:
        data = load_review(gb)
    assert [i.bullets for i in data.items] == [(), ()] and "not valid YAML" in data.notes[0]
