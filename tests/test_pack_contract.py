"""The rubric pack contract (``grader.pack.contract``, ``grader.pack.validate``).

Two halves, as huggingface/evaluate tests its metrics: a contract test that walks every folder
under ``rubrics/`` and holds each pack to what the pipeline assumes of it, and one test per kind of
broken join, on small packs built in ``tmp_path`` (a valid one, then one file changed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from grader.pack.contract import open_pack, outline_for
from grader.pack.rubric import RUBRICS_DIR, RubricError, load_rubric
from grader.pack.validate import PackError, read_probes

REPO = Path(__file__).resolve().parent.parent
PACKS = sorted(d for d in RUBRICS_DIR.iterdir() if (d / "rubric.yaml").is_file())


# --- every pack under rubrics/ -------------------------------------------------------------------


@pytest.mark.parametrize("folder", PACKS, ids=[p.name for p in PACKS])
def test_pack_loads_and_every_join_holds(folder: Path) -> None:
    rubric = load_rubric(folder)  # validates the joins
    pack = open_pack(rubric)
    assert rubric.assignment and rubric.subtasks and rubric.checks
    assert set(pack.check_functions) == {c.id for c in rubric.checks}
    for subtask, names in rubric.probe_plan().items():
        sent = rubric.probe_source(subtask)
        compile(sent, f"{folder.name}/probes.py[{subtask}]", "exec")  # compiled, never run here
        assert set(names) <= set(read_probes(sent)), f"{subtask}: a probe its checks name is not in what the kernel gets"


INPUTS_SCRIPT = """
import hashlib, json, sys
from grader.kernel.store import activate
activate()
from grader.pack.rubric import load_rubric
rubric = load_rubric(sys.argv[1])
plan = rubric.probe_plan()
digests = []
for seed in (1234, 1234, 98765):
    inputs = rubric.checks_module.make_inputs(rubric, plan, seed, source={})
    assert set(inputs) <= {*plan, ""}, sorted(inputs)
    digests.append(hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest())
rubric.checks_module.reference(rubric, inputs)
print(json.dumps({"digests": digests, "probed": bool(plan)}))
"""


@pytest.mark.parametrize("folder", PACKS, ids=[p.name for p in PACKS])
def test_inputs_are_fresh_plain_data_and_reproducible(folder: Path, built_store: Path) -> None:
    """The inputs go into the kernel as JSON; the same submission draws the same ones again (a
    re-grade gives the same grade), another submission other ones (knowing them answers nothing).
    In a subprocess: the store must be activated before any Hugging Face library is imported."""
    env = {**os.environ, "GRADER_STORE": str(built_store)}
    proc = subprocess.run([sys.executable, "-c", INPUTS_SCRIPT, str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    first, again, other = got["digests"]
    assert first == again
    if got["probed"]:
        assert other != first


# --- one broken join at a time ---------------------------------------------------------------------

RUBRIC = """\
schema_version: 1
assignment: {name}
title: "A pack built by a test"
total_points: 2
subtasks:
  - {{id: a, title: "Part A", points: 1}}
  - {{id: b, title: "Part B", points: 1}}
checks:
  - {{id: a.one, subtask: a, points: 1, probes: [first], title: "first works"}}
  - {{id: b.two, subtask: b, points: 1, probes: [second], title: "second works"}}
"""
PROBES = """\
def shared(ns, inputs):
    return 0

# --- a -----------------------------------------------------------------
def first(ns, inputs):
    return ns["x"]

# --- b -----------------------------------------------------------------
def second(ns, inputs):
    return ns["y"]
"""
CHECKS = """\
from grader.steps.checks import Verdict, check


def make_inputs(rubric, plan, seed, source):
    return {}


def reference(rubric, inputs):
    return None


@check("a.one")
def one(ctx):
    return Verdict(1.0)


@check("b.two")
def two(ctx):
    return Verdict(1.0)
"""


def make_pack(tmp_path: Path, *, rubric: str = RUBRIC, probes: str | None = PROBES, checks: str | None = CHECKS,
              extra: dict[str, str] | None = None) -> Path:
    """A pack in ``tmp_path`` under a fresh name (packs are imported by name, once per process)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("", encoding="utf-8")
    (folder / "rubric.yaml").write_text(rubric.format(name=name), encoding="utf-8")
    if probes is not None:
        (folder / "probes.py").write_text(probes, encoding="utf-8")
    if checks is not None:
        (folder / "checks.py").write_text(checks, encoding="utf-8")
    for file, text in (extra or {}).items():
        (folder / file).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def problems(folder: Path) -> tuple[str, ...]:
    with pytest.raises(PackError) as info:
        load_rubric(folder)
    return info.value.problems


def test_the_valid_pack_loads(tmp_path: Path) -> None:
    rubric = load_rubric(make_pack(tmp_path))
    pack = open_pack(rubric)
    assert set(pack.check_functions) == {"a.one", "b.two"}
    assert {n: [d.section for d in defs] for n, defs in pack.probes.items()} == {"shared": [""], "first": ["a"], "second": ["b"]}
    from grader.pack.marks import outline_by_marks

    assert pack.outline is outline_by_marks  # no conventions.py: cells by their # [subtask] marks


def test_a_yaml_check_without_function_and_the_orphan_function(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, checks=CHECKS.replace('@check("a.one")', '@check("a.onw")'))
    found = problems(folder)
    assert f"{folder}/rubric.yaml: check 'a.one' has no function in {folder}/checks.py (did you mean 'a.onw'?)" in found
    assert f"{folder}/checks.py: @check('a.onw') (one) is not a check of {folder}/rubric.yaml (did you mean 'a.one'?)" in found
    assert len(found) == 2


def test_paths_are_shown_relative_to_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_pack(tmp_path, checks=CHECKS.replace('@check("b.two")\n', ""))
    monkeypatch.chdir(tmp_path)
    assert problems(folder) == (f"{folder.name}/rubric.yaml: check 'b.two' has no function in {folder.name}/checks.py",)


def test_a_probe_that_probes_py_does_not_define(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, rubric=RUBRIC.replace("probes: [first]", "probes: [frist]"))
    assert problems(folder) == (
        f"{folder}/rubric.yaml: check 'a.one' names probe 'frist', which {folder}/probes.py does not define (did you mean 'first'?)",)


def test_a_private_helper_is_not_a_probe(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, probes=PROBES.replace("def first(", "def _first("))
    assert "names probe 'first', which" in problems(folder)[0]


def test_a_probe_defined_only_in_another_subtasks_section(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, rubric=RUBRIC.replace("probes: [first]", "probes: [second]"))
    (found,) = problems(folder)
    assert found.startswith(f"{folder}/rubric.yaml: check 'a.one' (subtask a) names probe 'second', which {folder}/probes.py "
                            "defines only in section(s) b")


def test_a_shared_probe_serves_every_subtask(tmp_path: Path) -> None:
    load_rubric(make_pack(tmp_path, rubric=RUBRIC.replace("probes: [first]", "probes: [first, shared]")))


def test_a_section_that_names_no_subtask(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, probes=PROBES.replace("# --- b ---", "# --- bb ---"))
    assert problems(folder) == (f"{folder}/probes.py: line 8: section 'bb' is not a subtask of {folder}/rubric.yaml (did you mean 'b'?)",)


def test_a_probe_that_cannot_take_ns_and_inputs(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, probes=PROBES.replace("def first(ns, inputs):", "def first(ns):"))
    assert problems(folder) == (f"{folder}/probes.py: line 5: probe 'first(ns)' must take (ns, inputs)",)


def test_probes_py_that_does_not_parse(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, probes=PROBES.replace("return ns[\"y\"]", "return ns[\"y\""))
    (found,) = problems(folder)
    assert found.startswith(f"{folder}/probes.py: line ") and "not valid Python" in found


def test_no_probes_py_but_probes_named(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, probes=None)
    assert problems(folder) == (f"{folder}/rubric.yaml: check 'a.one' names probe 'first' but the pack has no probes.py",)


def test_a_literal_probes_table_decides_the_names(tmp_path: Path) -> None:
    table = PROBES + '\nPROBES = {"first": first, "second": second}\n'
    assert set(read_probes(table)) == {"first", "second"}  # "shared" is not in the table
    load_rubric(make_pack(tmp_path, probes=table))


def test_one_id_on_two_check_functions(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, checks=CHECKS + '\n\n@check("a.one")\ndef one_again(ctx):\n    return Verdict(0.0)\n')
    assert problems(folder) == (f"{folder}/checks.py: @check('a.one') is on 2 functions (one, one_again); the grader would run only one",)


def test_a_check_function_on_a_manual_item(tmp_path: Path) -> None:
    rubric = RUBRIC.replace("total_points: 2", "total_points: 3").replace("points: 1}}\n  - {{id: b", "points: 2}}\n  - {{id: b", 1)
    rubric += 'manual:\n  - {{id: a.essay, subtask: a, points: 1, prompt: "Explain."}}\n'
    folder = make_pack(tmp_path, rubric=rubric, checks=CHECKS + '\n\n@check("a.essay")\ndef essay(ctx):\n    return Verdict(1.0)\n')
    assert problems(folder) == (f"{folder}/checks.py: @check('a.essay') (essay) is a manual item of {folder}/rubric.yaml, scored by a person, not a check",)


def test_a_check_function_with_the_wrong_parameters(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, checks=CHECKS.replace("def two(ctx):", "def two(ctx, extra):"))
    assert problems(folder) == (f"{folder}/checks.py: check 'b.two' (two(ctx, extra)) must take one argument, the CheckContext",)


def test_make_inputs_missing_and_reference_with_the_wrong_parameters(tmp_path: Path) -> None:
    checks = CHECKS.replace("def make_inputs(rubric, plan, seed, source):\n    return {}\n", "").replace(
        "def reference(rubric, inputs):", "def reference(inputs):")
    folder = make_pack(tmp_path, checks=checks)
    assert set(problems(folder)) == {
        f"{folder}/checks.py: no make_inputs(rubric, plan, seed, source), which the grader calls for every submission",
        f"{folder}/checks.py: reference(inputs) must take (rubric, inputs)",
    }


def test_manual_items_need_the_helpers_they_name(tmp_path: Path) -> None:
    rubric = RUBRIC.replace("total_points: 2", "total_points: 4").replace("{{id: a, title: \"Part A\", points: 1}}", "{{id: a, title: \"Part A\", points: 3}}")
    rubric += ('manual:\n  - {{id: a.why, subtask: a, points: 1, prompt: "Why?", suggest: true}}\n'
               '  - {{id: a.how, subtask: a, points: 1, prompt: "How?", reference: how}}\n')
    folder = make_pack(tmp_path, rubric=rubric)
    assert set(problems(folder)) == {
        f"{folder}/rubric.yaml: manual item 'a.why' has suggest: true but {folder}/checks.py has no suggest(item_id, text)",
        f"{folder}/rubric.yaml: manual item 'a.how' names reference 'how' but {folder}/checks.py has no reference_answer(name)",
    }
    helpers = CHECKS + "\n\ndef suggest(item_id, text):\n    return None\n\n\ndef reference_answer(name):\n    return ''\n"
    load_rubric(make_pack(tmp_path, rubric=rubric, checks=helpers))


def test_points_that_do_not_add_up_per_subtask(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, rubric=RUBRIC.replace("points: 1, probes: [second]", "points: 0.5, probes: [second]"))
    with pytest.raises(RubricError, match="subtask b is worth 1 points but its checks and manual items add up to 0.5"):
        load_rubric(folder)


def test_checks_py_that_fails_to_import(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, checks="import no_such_module_here\n")
    (found,) = problems(folder)
    assert found.startswith(f"{folder / 'checks.py'}: failed to import: ModuleNotFoundError")


def test_a_store_entry_that_is_not_module_colon_function(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, rubric=RUBRIC + 'store_builder: "reference.store.build"\n')
    assert problems(folder) == (f"{folder}/rubric.yaml: store_builder 'reference.store.build' must name a function as 'package.module:function'",)


def test_conventions_are_the_packs_outline(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, extra={"conventions.py": """\
        from grader.pack.marks import outline_by_marks


        def outline(nb):
            return outline_by_marks(nb)
        """})
    rubric = load_rubric(folder)
    assert outline_for(rubric).__module__.endswith(".conventions")


def test_conventions_without_an_outline(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, extra={"conventions.py": "def sections(nb):\n    return []\n"})
    assert problems(folder) == (f"{folder}/conventions.py: no outline(nb), which says which cell belongs to which subtask",)


def test_every_problem_at_once(tmp_path: Path) -> None:
    checks = CHECKS.replace('@check("a.one")', '@check("a.onw")').replace("def reference(rubric, inputs):", "def reference():")
    folder = make_pack(tmp_path, rubric=RUBRIC.replace("probes: [second]", "probes: [secnd]"), checks=checks)
    with pytest.raises(RubricError) as info:
        load_rubric(folder)
    message = str(info.value)
    assert message.startswith("4 problems in the rubric pack:\n  - ")
    for part in ("check 'a.one' has no function", "@check('a.onw')", "names probe 'secnd'", "reference() must take"):
        assert part in message


def test_checks_py_is_required_once_there_are_checks(tmp_path: Path) -> None:
    folder = make_pack(tmp_path, checks=None)
    assert problems(folder) == (f"{folder}: the pack has no checks.py (its @check functions, make_inputs and reference)",)
    manual_only = ("schema_version: 1\nassignment: {name}\ntitle: T\ntotal_points: 1\nsubtasks: [{{id: a, title: A, points: 1}}]\n"
                   "manual: [{{id: a.why, subtask: a, points: 1, prompt: 'Why?', bullets: ['1 if right']}}]\n")
    load_rubric(make_pack(tmp_path, rubric=manual_only, probes=None, checks=None))  # grader review reads its bullets


# --- the pack's kernel: shims and imports ------------------------------------------------------------

KERNEL = """\
kernel:
  envs: [{{{{name: current, title: "today's libraries"}}}}]
  shims: [{shim}]
  imports: ["json"]
"""


def test_a_shim_that_is_not_in_the_pack(tmp_path: Path) -> None:
    for shim, said in (("missing.py", "'missing.py' does not exist"), ("../x.py", "must be a .py file inside the pack"),
                       ("shims.txt", "must be a .py file inside the pack")):
        folder = make_pack(tmp_path, rubric=RUBRIC + KERNEL.format(shim=shim))
        with pytest.raises(RubricError) as info:
            load_rubric(folder)
        assert f"{folder / 'rubric.yaml'}: kernel.shims: " in str(info.value) and said in str(info.value)


def test_the_shims_reach_a_kernel_through_the_preamble(tmp_path: Path) -> None:
    """The pack's shim patches a module when it is imported after the preamble, and its note is kept."""
    shim = '''
import grader.kernel.runtime as runtime

def _patch(module):
    module.GRADER_PATCHED = True
    runtime.note("env:test", "patched json for the test")

PATCHES = {"json.decoder": _patch}
'''
    folder = make_pack(tmp_path, rubric=RUBRIC + KERNEL.format(shim="shim.py"), extra={"shim.py": shim})
    rubric = load_rubric(folder)
    assert rubric.kernel.imports == ("json",)
    code = rubric.kernel_preamble + (
        "import sys\nassert 'shim' not in dir()\n"
        "import json.decoder\nrt = sys.modules['grader.kernel.runtime']\n"
        "print(json.decoder.GRADER_PATCHED, dict(rt.DRIFT))\n")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + code],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True {'env:test': 'patched json for the test'}"


def test_one_fingerprint_for_what_decides_a_grade(tmp_path: Path) -> None:
    """Points are not in it (they re-score); the pack's files and the kernel environment are."""
    folder = make_pack(tmp_path, rubric=RUBRIC + KERNEL.format(shim="shim.py").replace(
        "  envs: [{{name: current", "  envs: [{{name: course, title: old, packages: [\"numpy<2\"]}}, {{name: current"),
        extra={"shim.py": "PATCHES = {}\n"})
    rubric = load_rubric(folder)
    base = rubric.fingerprint()
    assert base == load_rubric(folder).fingerprint() and len(base) == 64
    assert rubric.fingerprint("current") != rubric.fingerprint("course")
    yaml_path = folder / "rubric.yaml"
    text = yaml_path.read_text()
    regraded = (text.replace("total_points: 2", "total_points: 3").replace('title: "Part A", points: 1}', 'title: "Part A", points: 2}')
                .replace("subtask: a, points: 1,", "subtask: a, points: 2,"))
    assert regraded.count("points: 2") == 2
    yaml_path.write_text(regraded)
    assert load_rubric(folder).total_points == 3
    assert load_rubric(folder).fingerprint() == base  # points only: re-scored, not executed again
    (folder / "shim.py").write_text("PATCHES = {}  # changed\n")
    assert load_rubric(folder).fingerprint() != base


def test_assignment3_long_convert_row_is_truncated_by_t5_yet_read_back_whole() -> None:
    """For any secret, 3.1's long row is over 512 T5 tokens (it tests truncation) and under the
    20,000 characters a probe sends back of a text (the check must see the whole row). Twelve
    random contexts went past 20,000 characters for some secrets: a right solution lost a point."""
    from transformers import AutoTokenizer

    rubric = load_rubric("assignment3")
    plan = {"3.1": ("convert",)}
    tok = AutoTokenizer.from_pretrained("t5-small")
    for seed in range(40):
        row = rubric.checks_module.make_inputs(rubric, plan, seed, source={})["3.1"]["convert"]["rows"][-1]
        text = f"question: {row['question']} context: {row['context']} </s>"
        assert len(text) < 10_000, (seed, len(text))
        assert len(tok(text).input_ids) > 700, seed
