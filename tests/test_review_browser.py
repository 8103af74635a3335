"""grader review in a real browser: Debian's headless Chromium driven by Playwright.

What a TA does, by keyboard, against a gradebook made without running a notebook; what the
gradebook and the outputs hold afterwards; two TAs on one item; a hostile answer. Each test keeps
a screenshot in its own tmp folder. Skipped (saying why) only where no Chromium is installed.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_fixtures import CHROMIUM_ARGS, ItemSpec, ServerThread, find_chromium, make_gradebook

from grader.review.app import KATEX, ReviewConfig, create_app
from grader.review.clustering import MiniLM

pytestmark = pytest.mark.browser

ITEMS = [
    ItemSpec("1.1", "1.1", 3, "Why can the attention weights a be read as a categorical distribution?",
             "The weights come from a **softmax**: every $a_i \\ge 0$ and $\\sum_i a_i = 1$, a categorical distribution over the items."),
    ItemSpec("1.4", "1.4", 1, "How do memory and time grow with the sequence length l?", "Quadratically, $O(l^2)$: every token attends to every token."),
    ItemSpec("2.2.questions", "2.2", 0.5, "The ids of [CLS] and [MASK]?", "[CLS] is 101 and [MASK] is 103."),
]
RIGHT = {
    "s01": "The weights are the output of a softmax, so each one is between 0 and 1 and together they sum to 1: a categorical distribution.",
    "s02": "Softmax makes every weight non-negative and normalises them so that they add up to one, which is a probability distribution over the items.",
    "s03": "Because of the softmax, all $a_i$ are in $[0, 1]$ and $\\sum_i a_i = 1$, so $a$ is a categorical distribution.",
}
WRONG = {
    "s04": "Because the keys are orthogonal to each other, every weight belongs to exactly one category.",
    "s05": "The key vectors are mutually orthogonal, which makes the weights independent categories.",
}
TEMPLATE = {"s06": "Enter your answer here"}
NAMES = {"s01": "Ada Lovelace", "s02": "Alan Turing", "s03": "Grace Hopper", "s04": "Edsger Dijkstra", "s05": "Barbara Liskov", "s06": "Ken Thompson"}


def answers() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for sid, text in {**RIGHT, **WRONG, **TEMPLATE}.items():
        out[sid] = {"1.1": text, "1.4": "It is quadratic in l." if sid < "s04" else "Linear in l.", "2.2.questions": "101 and 103"}
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine: scripts/setup.sh installs Debian's chromium package when run as root with apt-get")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def embedder() -> MiniLM:
    return MiniLM()  # loaded once for the module


def start(tmp_path: Path, *, grouping: bool, embedder: MiniLM | None = None,
          data: dict[str, dict[str, str]] | None = None) -> tuple[ServerThread, ReviewConfig]:
    out = tmp_path / "out"
    book = make_gradebook(out, ITEMS, data or answers(), names=NAMES,
                          comments={"s01": {"1.1": "Peer: clear and short."}})
    config = ReviewConfig(gradebook=book, grouping=grouping, embedder=embedder)
    return ServerThread(create_app(config)), config


def points(book: Path) -> dict[tuple[str, str], float | None]:
    with sqlite3.connect(book) as c:
        return {(s, i): p for s, i, p in c.execute("SELECT submission_id, item_id, points FROM manual_scores")}


def open_page(context: Any, url: str) -> tuple[Any, list[str]]:
    """A page with every console error and page error collected (a CSP violation is one)."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page, problems


def card(page: Any, sid: str, item: str = "1.1") -> Any:
    return page.locator(f"[data-kind=answer][data-submission='{sid}'][data-item='{item}']")


def wait_saved(page: Any, sid: str, item: str = "1.1") -> None:
    page.wait_for_function(
        "([s, i]) => { const c = document.querySelector(`[data-kind=answer][data-submission='${s}'][data-item='${i}']`);"
        " return c && (c.classList.contains('ok') || c.classList.contains('conflict') || c.classList.contains('error')); }",
        arg=[sid, item],
    )


def test_three_answers_scored_by_keyboard(browser: Any, tmp_path: Path) -> None:
    server, config = start(tmp_path, grouping=False)
    with server:
        context = browser.new_context()
        page, problems = open_page(context, server.url(config.token, "item/1.1"))
        page.keyboard.press("j")  # the first answer (s01)
        page.keyboard.press("2")
        page.keyboard.press("Enter")  # save, go to s02
        wait_saved(page, "s01")
        page.keyboard.type("1.5")
        page.keyboard.press("Enter")
        wait_saved(page, "s02")
        page.keyboard.press("0")
        page.keyboard.press("c")  # a comment for s03, Enter saves both
        page.keyboard.type("Says why, but only for one weight.")
        page.keyboard.press("Enter")
        wait_saved(page, "s03")
        page.screenshot(path=str(tmp_path / "keyboard.png"), full_page=True)

        assert card(page, "s02").locator(".badge").inner_text() == "1.5 / 3"
        assert page.locator("[data-progress]").inner_text() == "3 of 6 scored"
        assert problems == []
        got = points(config.gradebook)  # in the gradebook as soon as the page says saved
        assert got == {("s01", "1.1"): 2.0, ("s02", "1.1"): 1.5, ("s03", "1.1"): 0.0}
        out = config.gradebook.parent
        deadline = time.monotonic() + 20  # the files follow in the background, while the server runs
        grades_csv = out / "grades.csv"
        while not (grades_csv.is_file() and ",1.5," in grades_csv.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ",1.5," in grades_csv.read_text()

    # One truth: result.json, grades.csv and the overview say the same as the gradebook.
    result = json.loads((out / "s02" / "result.json").read_text())
    assert [m["points"] for m in result["manual"] if m["id"] == "1.1"] == [1.5]
    s03 = json.loads((out / "s03" / "result.json").read_text())
    assert [m["comment"] for m in s03["manual"] if m["id"] == "1.1"] == ["Says why, but only for one weight."]
    grades = {r["id"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert (grades["s01"]["1.1"], grades["s02"]["total"], grades["s04"]["total"]) == ("2", "1.5", "0")
    assert (out / "index.html").is_file()


def test_a_whole_group_scored_then_one_answer_adjusted(browser: Any, tmp_path: Path, embedder: MiniLM) -> None:
    server, config = start(tmp_path, grouping=True, embedder=embedder)
    with server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page, problems = open_page(context, server.url(config.token, "item/1.1"))
        groups = page.locator("section.group")
        members = [[c.get_attribute("data-submission") for c in g.locator("[data-kind=answer]").all()] for g in groups.all()]
        # The right answers are grouped, and that group is the one nearest the reference: first.
        assert sorted(members[0]) == sorted(RIGHT), members
        assert members[-1] == ["s06"]  # the template's text: the no-answer group, last
        assert "No answer" in groups.last.locator("h2").inner_text()
        page.screenshot(path=str(tmp_path / "cluster-view.png"), full_page=True)

        page.keyboard.press("j")  # the first group's head
        page.keyboard.press("3")
        page.keyboard.press("Enter")  # scores every answer in the group, moves to its first answer
        page.wait_for_function("() => document.querySelector('section.group .group-head').classList.contains('ok')")
        assert "all 3 saved" in page.locator("section.group .group-head output.status").first.inner_text()
        page.keyboard.press("j")  # the group's second answer
        second = members[0][1]
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        wait_saved(page, second)
        page.screenshot(path=str(tmp_path / "cluster-scored.png"), full_page=True)
        suggestion = groups.last.locator(".group-head button.suggest")
        assert suggestion.inner_text() == "suggested 0"  # shown ...
        assert problems == []
    got = points(config.gradebook)
    assert got == {**{(s, "1.1"): 3.0 for s in members[0]}, (second, "1.1"): 2.0}
    assert ("s06", "1.1") not in got  # ... and never applied by itself


def test_points_are_there_after_a_reload(browser: Any, tmp_path: Path) -> None:
    server, config = start(tmp_path, grouping=False)
    with server:
        context = browser.new_context()
        page, problems = open_page(context, server.url(config.token, "student/s04"))
        page.keyboard.press("j")  # s04's first item (1.1)
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        wait_saved(page, "s04", "1.1")
        page.keyboard.press("0")  # 1.4
        page.keyboard.press("Enter")
        wait_saved(page, "s04", "1.4")
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        page.screenshot(path=str(tmp_path / "after-reload.png"), full_page=True)
        first, second = card(page, "s04", "1.1"), card(page, "s04", "1.4")
        assert first.locator("input.points").input_value() == "1"
        assert first.locator(".badge").inner_text() == "1 / 3"
        assert first.get_attribute("data-version") == "1"
        assert second.locator("input.points").input_value() == "0"
        assert card(page, "s04", "2.2.questions").locator(".badge").inner_text() == "open"
        # the per-question view shows the same
        page.goto(server.url(config.token, "item/1.4"))
        page.wait_for_selector("body[data-ready='1']")
        assert card(page, "s04", "1.4").locator("input.points").input_value() == "0"
        assert problems == []


def test_two_tas_on_one_item_never_lose_an_edit(browser: Any, tmp_path: Path) -> None:
    server, config = start(tmp_path, grouping=False)
    with server:
        ta_a, ta_b = browser.new_context(), browser.new_context()
        page_a, problems_a = open_page(ta_a, server.url(config.token, "item/1.1"))
        page_b, problems_b = open_page(ta_b, server.url(config.token, "item/1.1"))
        page_a.fill("#ta-name", "Anna")
        page_a.dispatch_event("#ta-name", "change")

        card(page_a, "s01").locator("input.points").fill("2")
        card(page_a, "s01").locator("textarea.comment").fill("good")
        card(page_a, "s01").locator("input.points").press("Enter")
        wait_saved(page_a, "s01")

        # B's page still shows version 0: B's 3 is refused, and B sees Anna's 2 and why.
        card(page_b, "s01").locator("input.points").fill("3")
        card(page_b, "s01").locator("input.points").press("Enter")
        wait_saved(page_b, "s01")
        b_card = card(page_b, "s01")
        assert "conflict" in (b_card.get_attribute("class") or "")
        assert b_card.locator("input.points").input_value() == "2"
        assert b_card.locator("textarea.comment").input_value() == "good"
        status = b_card.locator("output.status").inner_text()
        assert "Anna changed this meanwhile" in status and "your 3 was not kept" in status
        page_b.screenshot(path=str(tmp_path / "two-tas-b.png"), full_page=True)
        assert points(config.gradebook)[("s01", "1.1")] == 2.0

        # B, now on the current version, overrides on purpose; A's page is the stale one now.
        b_card.locator("input.points").fill("3")
        b_card.locator("input.points").press("Enter")
        page_b.wait_for_function("() => document.querySelector(\"[data-submission='s01']\").dataset.version === '2'")
        assert points(config.gradebook)[("s01", "1.1")] == 3.0
        card(page_a, "s01").locator("input.points").fill("1")
        card(page_a, "s01").locator("input.points").press("Enter")
        page_a.wait_for_function("() => document.querySelector(\"[data-submission='s01']\").classList.contains('conflict')")
        assert card(page_a, "s01").locator("input.points").input_value() == "3"
        assert points(config.gradebook)[("s01", "1.1")] == 3.0
        assert problems_a == [] and problems_b == []


HOSTILE = (
    "Look: <script>window.__pwned = 1</script> and <img src=x onerror=\"window.__pwned = 2\">\n\n"
    "[click me](javascript:window.__pwned=3) <a href=\"#\" onclick=\"window.__pwned=4\">or me</a>\n\n"
    "<svg onload=\"window.__pwned=5\"></svg> $\\href{javascript:window.__pwned=6}{x}$"
)


def test_a_hostile_answer_shows_as_text_and_runs_nothing(browser: Any, tmp_path: Path) -> None:
    data = answers()
    data["s05"]["1.1"] = HOSTILE
    server, config = start(tmp_path, grouping=False, data=data)
    with server:
        context = browser.new_context()
        page, problems = open_page(context, server.url(config.token, "item/1.1"))
        hostile = card(page, "s05").locator("div.text")
        for link in page.locator("div.text a").all():
            assert not (link.get_attribute("href") or "").lower().startswith("javascript")
        text = hostile.inner_text()
        assert "<script>window.__pwned = 1</script>" in text and 'onerror="window.__pwned = 2"' in text
        page.locator("text=or me").first.click()
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
        assert page.evaluate("() => window.__pwned") is None
        assert page.evaluate("() => document.querySelectorAll('[onerror], [onclick], [onload], svg').length") == 0
        scripts = page.evaluate("() => Array.from(document.scripts).map(s => s.getAttribute('src'))")
        assert all(src and src.startswith(f"/{config.token}/static/") for src in scripts)
        # The CSP itself: a script added by hand is refused too (inline scripts never run).
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }")
        assert page.evaluate("() => window.__inline") is None
        assert any("Content Security Policy" in p for p in problems)  # the refusal, reported by the browser
        assert not [p for p in problems if "Content Security Policy" not in p]


def test_math_is_typeset_offline(browser: Any, tmp_path: Path) -> None:
    if not (KATEX / "katex.min.js").is_file():
        pytest.skip("KaTeX is not vendored (scripts/setup.sh fetches it with npm)")
    server, config = start(tmp_path, grouping=False)
    with server:
        context = browser.new_context()
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page, problems = open_page(context, server.url(config.token, "item/1.1"))
        page.wait_for_selector(".reference .katex")
        assert page.locator(".reference .math[data-typeset]").count() == 2
        s03 = card(page, "s03")
        assert s03.locator(".math").count() == s03.locator(".math[data-typeset] .katex").count() == 4  # $a_i$, $[0, 1]$, $\\sum...$, $a$
        page.screenshot(path=str(tmp_path / "math.png"), full_page=True)
        assert problems == []
        assert requests and all(u.startswith(f"http://127.0.0.1:{server.port}/") for u in requests)
