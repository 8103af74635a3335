"""The similarity report: renamed copies are found, the template is not evidence, teams are expected."""

from __future__ import annotations

import random
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.course.similarity import code_tokens, defined_names, find_similar, load_report, write_report

TEMPLATE_CODE = [
    "import numpy as np\nimport torch\nfrom datasets import load_dataset\nswag = load_dataset('swag', 'regular')\nprint(swag['train'][0])",
    "ending_names = ['ending0', 'ending1', 'ending2', 'ending3']\nfor i in range(4):\n    print(swag['train'][0][ending_names[i]])",
]
TEMPLATE_TEXT = "### Subtask 1: Copying\nExplain why a can be interpreted as a categorical distribution and describe the conditions."
OPS = ["np.add", "np.multiply", "np.maximum", "np.minimum", "torch.tensor", "np.log1p", "np.sqrt", "np.clip", "np.tanh", "len"]
WORDS = ("attention softmax weights query key value vector distribution probability sum positive large small "
         "orthogonal basis subspace norm average copy output input scale dot product matrix row column").split()


def student_code(rng: random.Random) -> list[str]:
    """Three cells of code nobody else writes the same way."""
    cells = []
    for c in range(3):
        lines = [f"def f{c}_{rng.randint(0, 99)}(data, k={rng.randint(1, 9)}):"]
        prev = "data"
        for j in range(rng.randint(5, 8)):
            op = rng.choice(OPS)
            args = f"{prev}, {rng.randint(2, 50)}" if op in ("np.add", "np.multiply", "np.maximum", "np.minimum") else prev
            if op == "np.clip":
                args = f"{prev}, {rng.randint(0, 5)}, {rng.randint(6, 99)}"
            name = f"t{j}"
            lines.append(f"    {name} = {op}({args})")
            if rng.random() < 0.4:
                lines.append(f"    if {name} is None:\n        return {rng.randint(0, 9)}")
            prev = name
        lines.append(f"    return {prev}")
        cells.append("\n".join(lines))
    return cells


def student_text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(60))


def write(path: Path, code: list[str], text: str, team: str = "") -> Path:
    cells = [new_markdown_cell(f"**Team:** {team}")] if team else []
    cells += [new_code_cell(TEMPLATE_CODE[0]), new_markdown_cell(TEMPLATE_TEXT), new_markdown_cell(text), new_code_cell(TEMPLATE_CODE[1])]
    cells += [new_code_cell(c) for c in code]
    path.write_text(nbformat.writes(new_notebook(cells=cells)), encoding="utf-8")
    return path


def rename_and_reformat(cells: list[str]) -> list[str]:
    """What a copier does: other names, comments, blank lines and spacing."""
    out = []
    for src in cells:
        src = src.replace("data", "inputs").replace("    t", "    tmp_")
        for j in range(10):
            src = src.replace(f"t{j} ", f"tmp_{j} ").replace(f"(t{j}", f"(tmp_{j}").replace(f"return t{j}", f"return tmp_{j}")
        lines = []
        for line in src.splitlines():
            lines.append(line.replace(" = ", "=").replace(", ", ","))
            lines.append("    # my own idea")
            lines.append("")
        out.append("\n".join(lines))
    return out


def make_class(tmp_path: Path) -> dict[str, Path]:
    rng = random.Random(7)
    paths = {}
    codes = {f"s{i}": student_code(rng) for i in range(10)}
    texts = {f"s{i}": student_text(rng) for i in range(10)}
    codes["s1"] = rename_and_reformat(codes["s0"])  # a renamed copy
    texts["s5"] = texts["s4"].replace("attention", "the attention") + " i think"  # copied written answer
    for sid in codes:
        paths[sid] = write(tmp_path / f"{sid}.ipynb", codes[sid], texts[sid])
    # A team that uploaded twice: identical, and both name the same people.
    team_code, team_text = student_code(rng), student_text(rng)
    for sid in ("t1", "t2"):
        paths[sid] = write(tmp_path / f"{sid}.ipynb", team_code, team_text, team="Ada Lovelace, Alan Turing")
    template = write(tmp_path / "template.ipynb", ["# your code"], "Enter your answer here")
    paths["_template"] = template
    return paths


def test_renamed_copy_is_flagged_with_passages(tmp_path: Path) -> None:
    paths = make_class(tmp_path)
    template = paths.pop("_template")
    teams = {"t1": ("Ada Lovelace", "Alan Turing"), "t2": ("Alan Turing", "Ada Lovelace")}
    report = find_similar(paths, template=template, teams=teams)
    pairs = {(p.a, p.b, p.kind): p for p in report.pairs}
    assert ("s0", "s1", "code") in pairs
    copy = pairs[("s0", "s1", "code")]
    assert copy.score > 0.9 and not copy.same_team and copy.z >= 3
    assert ("s4", "s5", "text") in pairs and pairs[("s4", "s5", "text")].score > 0.6
    # Only the planted pairs and the team: the shared template code alone flags nobody.
    assert {(a, b) for a, b, _ in pairs} == {("s0", "s1"), ("s4", "s5"), ("t1", "t2")}
    assert pairs[("t1", "t2", "code")].same_team
    assert report.pairs[-1].same_team  # teams come last
    passage = copy.passages[0]
    assert any(line.shared for line in passage.lines_a) and any(line.shared for line in passage.lines_b)
    assert not any("load_dataset" in line.text for p in copy.passages for line in p.lines_a)  # template cells not shown

    write_report(report, tmp_path / "similarity.json")
    again = load_report(tmp_path / "similarity.json")
    assert again is not None and again.pairs == report.pairs


def test_without_template_common_code_is_still_ignored(tmp_path: Path) -> None:
    paths = make_class(tmp_path)
    paths.pop("_template")
    report = find_similar(paths)
    assert {(p.a, p.b) for p in report.pairs} == {("s0", "s1"), ("s4", "s5"), ("t1", "t2")}


def test_normalisation_ignores_names_comments_and_layout() -> None:
    a = "def f(x):\n    y = np.add(x, 2)  # add\n    return y\n"
    b = "def g(inp):\n\n    out=np.add(inp,2)\n    # comment\n    return out"
    ta = [t for t, _ in code_tokens(a, defined_names([a]))]
    tb = [t for t, _ in code_tokens(b, defined_names([b]))]
    assert ta == tb
    assert "np" in ta and "add" in ta  # library calls stay
    c = "%matplotlib inline\n!pip install x\nz = 1"
    assert [t for t, _ in code_tokens(c, defined_names([c]))] == ["V", "=", "1"]
    assert code_tokens("def broken(:\n  x = 'unterminated", set())  # falls back, never raises


def test_unreadable_notebook_is_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    report = find_similar({"bad": bad, "also": bad})
    assert report.pairs == () and report.submissions == 2
