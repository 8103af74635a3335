"""Scoring the written answers: the review page by keyboard (scripted in headless Chromium)
against the CSV round trip (grader manual export / import), on one gradebook of 30 submissions
with 12 written items each (360 answers), made without running a notebook.

Printed per route: wall time, key presses, page loads, and the time per answer. The keyboard
routes wait for each save to come back before the next key (as a TA watching the page would);
every save also rewrites that submission's result.json, grades.csv and the overview, like an
import does. The CSV route times the machine's part (export, import, outputs); the TA's editing of
the sheet is not timed, only counted (one value and one Enter or arrow key per row). Reading time
is the same on both routes and is left out.

It also keeps screenshots of the question view and the grouped view (--out).

    .venv/bin/python benchmarks/review_scoring.py [--students 30] [--out /tmp/review-bench]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from review_fixtures import CHROMIUM_ARGS, ItemSpec, ServerThread, find_chromium, make_gradebook  # noqa: E402

# Twelve written items as the official distribution splits them (Task 1 per question, 2.1 fields,
# 2.2 questions): ids and points only; the texts come from the synthetic answer set.
ITEM_IDS = [("1.1.1", "1.1", 1), ("1.1.2", "1.1", 1), ("1.1.3", "1.1", 1), ("1.2.1", "1.2", 2), ("1.2.2", "1.2", 2),
            ("1.3.1", "1.3", 1), ("1.3.2", "1.3", 3), ("1.4.1", "1.4", 0.25), ("1.4.2", "1.4", 0.25), ("1.4.3", "1.4", 0.5),
            ("2.1.fields", "2.1", 0.25), ("2.2.questions", "2.2", 0.5)]


def build(out: Path, students: int, seed: int = 7) -> tuple[Path, list[ItemSpec]]:
    doc = yaml.safe_load((REPO / "tests" / "data" / "review_paraphrases.yaml").read_text(encoding="utf-8"))
    questions = doc["questions"]
    rng = random.Random(seed)
    items, pools = [], []
    for n, (item_id, subtask, points) in enumerate(ITEM_IDS):
        q = questions[n % len(questions)]
        items.append(ItemSpec(item_id, subtask, points, q["prompt"], q["reference"]))
        pools.append([t for ps in q["groups"].values() for t in ps] + ["Enter your answer here"])
    answers = {f"s{k:02d}": {it.id: rng.choice(pool) for it, pool in zip(items, pools, strict=True)} for k in range(1, students + 1)}
    return make_gradebook(out, items, answers), items


def keyboard_route(browser: object, out: Path, students: int, *, grouping: bool, embedder: object,
                   shots: Path | None) -> dict[str, float]:
    from grader.review.app import ReviewConfig, create_app

    book, items = build(out, students)
    config = ReviewConfig(gradebook=book, grouping=grouping, embedder=embedder)  # type: ignore[arg-type]
    keys = loads = saves = 0
    with ServerThread(create_app(config)) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page = context.new_page()
        start = time.perf_counter()
        for n, item in enumerate(items):
            page.goto(server.url(config.token, f"item/{item.id}"))
            page.wait_for_selector("body[data-ready='1']")
            loads += 1
            if shots is not None and n == 0:
                page.screenshot(path=str(shots / ("cluster-view.png" if grouping else "question-view.png")), full_page=False)
            page.keyboard.press("j")
            keys += 1
            digit = "1" if item.max_points >= 1 else "0"  # one key per answer, within the maximum
            if grouping:
                heads = page.locator(".group-head")
                for g in range(heads.count()):
                    if g:  # Shift+J: from the previous group to this one
                        page.keyboard.press("Shift+J")
                        keys += 1
                    page.keyboard.press("0" if heads.nth(g).locator("xpath=..").get_attribute("class") == "group none" else digit)
                    page.keyboard.press("Enter")
                    keys += 2
                    page.wait_for_function("g => document.querySelectorAll('.group-head')[g].matches('.ok, .conflict, .error')", arg=g)
                    saves += 1
            else:
                for k in range(page.locator("[data-kind=answer]").count()):
                    page.keyboard.press(digit)
                    page.keyboard.press("Enter")
                    keys += 2
                    page.wait_for_function("k => document.querySelectorAll('[data-kind=answer]')[k].matches('.ok, .conflict, .error')", arg=k)
                    saves += 1
            if shots is not None and n == 0 and grouping:
                page.screenshot(path=str(shots / "cluster-view-scored.png"), full_page=False)
        context.close()
    seconds = time.perf_counter() - start  # stopping the server waits for the last outputs to be rewritten
    from grader.course.gradebook import Gradebook

    with Gradebook(book) as gb:
        scored = sum(1 for e in gb.entries() for m in e.result.manual if m.points is not None)
    return {"seconds": seconds, "keys": keys, "loads": loads, "saves": saves, "scored": scored}


def csv_route(out: Path, students: int) -> dict[str, float]:
    from grader.course.gradebook import Gradebook
    from grader.course.manual import COLUMNS, export_sheet, import_sheet, refresh_outputs

    book, _ = build(out, students)
    sheet = out / "sheet.csv"
    with Gradebook(book) as gb:
        t0 = time.perf_counter()
        rows_n = export_sheet(gb, sheet)
        t_export = time.perf_counter() - t0
        rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
        for r in rows:  # the TA's part: one value per row
            r["points"] = "1" if float(r["max_points"]) >= 1 else r["max_points"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)
        sheet.write_text("\ufeff" + buf.getvalue(), encoding="utf-8")
        t0 = time.perf_counter()
        report = import_sheet(gb, sheet)
        refresh_outputs(gb, report.submissions)
        t_import = time.perf_counter() - t0
        scored = sum(1 for e in gb.entries() for m in e.result.manual if m.points is not None)
    return {"seconds": t_export + t_import, "export": t_export, "import": t_import, "keys": 2 * rows_n, "rows": rows_n,
            "scored": scored, "sheet_kib": sheet.stat().st_size / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("/tmp/review-bench"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no Chromium: run scripts/setup.sh as root (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    from grader.review.clustering import MiniLM

    embedder = MiniLM()
    embedder.load()
    n = args.students * len(ITEM_IDS)
    print(f"{args.students} submissions x {len(ITEM_IDS)} written items = {n} answers")
    c = csv_route(args.out / "csv", args.students)
    print(f"CSV round trip:            {c['seconds']:6.1f} s machine time (export {c['export']:.2f} s, import + outputs "
          f"{c['import']:.2f} s), {c['rows']:.0f} rows, sheet {c['sheet_kib']:.0f} KiB; the TA types ~{c['keys']:.0f} keys "
          f"(value + Enter per row) in a spreadsheet, not timed; {c['scored']:.0f} scored")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        one = keyboard_route(browser, args.out / "one", args.students, grouping=False, embedder=embedder, shots=args.out)
        print(f"page, one answer at a time: {one['seconds']:6.1f} s wall ({one['seconds'] / n * 1000:.0f} ms per answer), "
              f"{one['keys']:.0f} keys, {one['loads']:.0f} page loads, {one['saves']:.0f} saves, {one['scored']:.0f} scored")
        grp = keyboard_route(browser, args.out / "groups", args.students, grouping=True, embedder=embedder, shots=args.out)
        print(f"page, a whole group at once: {grp['seconds']:6.1f} s wall, {grp['keys']:.0f} keys, {grp['loads']:.0f} page loads, "
              f"{grp['saves']:.0f} group saves ({n / max(grp['saves'], 1):.1f} answers per group), {grp['scored']:.0f} scored")
        browser.close()
    print(f"screenshots: {args.out / 'question-view.png'}, {args.out / 'cluster-view.png'}, {args.out / 'cluster-view-scored.png'}")


if __name__ == "__main__":
    main()
