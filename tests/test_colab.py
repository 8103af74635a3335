"""Colab, emulated (grader.kernel.platforms.colab and grader.steps.notebook.neutralize), and kernel environments
declared by a rubric (grader.kernel.envs): unit tests that run no notebook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.kernel import envs as kernel_env
from grader.kernel.platforms import colab
from grader.pack.rubric import RubricError, load_rubric
from grader.steps.notebook import neutralize


def _nb(*sources: str) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_code_cell(s) for s in sources]
    return nb


def test_content_paths_become_the_working_folder() -> None:
    nb = _nb(
        'model.save_pretrained("/content/drive/MyDrive/model")\nx = f"/content/{name}.zip"',
        "!zip -r /content/assignment3.zip /content/distilbert-base-uncased-swag",
        "os.chdir('/content')\nurl = 'https://example.org/content/x'\np = '/contents/x'",
    )
    out, notes = neutralize(nb, platform="colab")
    a, b, c = (cell.source for cell in out.cells)
    assert a == 'model.save_pretrained("./drive/MyDrive/model")\nx = f"./{name}.zip"'
    assert b == "!zip -r ./assignment3.zip ./distilbert-base-uncased-swag"
    assert c == "os.chdir('.')\nurl = 'https://example.org/content/x'\np = '/contents/x'"  # only /content itself
    assert any("5 `/content` path(s)" in n for n in notes), notes


def test_without_the_colab_platform_nothing_is_rewritten_and_mounts_are_cut() -> None:
    nb = _nb("p = '/content/x'", "from google.colab import drive\ndrive.mount('/content/drive')")
    out, notes = neutralize(nb)
    assert out.cells[0].source == "p = '/content/x'"
    assert "pass  # grader: skipped: drive.mount" in out.cells[1].source
    assert any("Drive mount" in n for n in notes)


def test_network_shell_lines_are_skipped_and_harmless_ones_kept() -> None:
    nb = _nb("!pip install transformers\n%pip install datasets\n!wget http://x/y.zip\n!git clone http://x\n!curl -O x\n!unzip y.zip\n!ls -la\n!nvidia-smi")
    out, notes = neutralize(nb, platform="colab")
    lines = out.cells[0].source.splitlines()
    assert [line.startswith("pass  # grader: skipped") for line in lines] == [True] * 5 + [False] * 3
    assert any("2 package-install" in n for n in notes) and any("3 shell line(s) that download" in n for n in notes)


def test_google_colab_imports_and_does_nothing(tmp_path: Path) -> None:
    """The stand-in package, in a fresh interpreter with the kernel's import path: every call works,
    prints what Colab prints, and records a note for the report's Colab group."""
    code = (
        "import grader.kernel.runtime as kc\n"
        "from google.colab import drive, files, userdata\n"
        "import google.protobuf\n"  # the real google namespace package is still there
        "drive.mount('/content/drive')\n"
        "assert files.upload() == {}\n"
        "files.download('x.zip')\n"
        "try:\n    userdata.get('HF_TOKEN')\nexcept userdata.SecretNotFoundError:\n    print('no secret')\n"
        "print(sorted(k for k in kc.DRIFT if k.startswith('colab:')))\n"
    )
    env = colab.kernel_env({"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Mounted at /content/drive" in done.stdout and "no secret" in done.stdout
    assert "['colab:drive.mount', 'colab:files.download', 'colab:files.upload', 'colab:userdata.get']" in done.stdout


def test_nvidia_smi_says_there_is_no_gpu(tmp_path: Path) -> None:
    env = colab.kernel_env({})
    done = subprocess.run(["nvidia-smi"], env={**os.environ, "PATH": env["PATH"]}, capture_output=True, text=True)
    assert done.returncode == 0 and "no GPU" in done.stdout
    assert env["PATH"].startswith(str(colab.BIN)) and os.environ.get("PATH", "/usr/bin") in env["PATH"]


def test_the_working_folder_has_a_drive(tmp_path: Path) -> None:
    colab.prepare_workdir(tmp_path)
    assert (tmp_path / "drive" / "MyDrive").is_dir()


def test_assignment3_declares_the_course_environment_and_colab() -> None:
    rubric = load_rubric("assignment3")
    course = rubric.kernel.env()
    assert rubric.kernel.default_env == "course" and rubric.kernel.platform == "colab"
    assert "transformers==4.35.2" in course.packages and "datasets==2.16.1" in course.packages
    assert rubric.kernel.env("current").is_grader_env
    with pytest.raises(RubricError, match="no kernel environment 'colab2023'"):
        rubric.kernel.env("colab2023")


def test_an_environment_is_named_by_what_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernel_env.ENV_VAR, str(tmp_path))
    a = kernel_env.EnvSpec("course", packages=("transformers==4.35.2",))
    b = kernel_env.EnvSpec("course", packages=("transformers==4.36.0",))
    assert kernel_env.env_dir(a) != kernel_env.env_dir(b) and kernel_env.env_dir(a).parent == tmp_path
    assert not kernel_env.is_built(a)
    with pytest.raises(kernel_env.EnvMissing, match="grader env build --env course"):
        kernel_env.interpreter(a)
    (kernel_env.env_dir(a)).mkdir(parents=True)
    assert not kernel_env.is_built(a)  # a folder without its marker is a build that did not finish
    assert kernel_env.interpreter(kernel_env.EnvSpec("current")) == Path(sys.executable)


@pytest.mark.parametrize(("kernel", "message"), [
    ("{default_env: x, envs: [{name: a}]}", "default_env 'x' is not one of"),
    ("{envs: []}", "must list at least one environment"),
    ("{envs: [{name: a}, {name: a}]}", "duplicated environment names"),
    ("{envs: [{name: a, pakages: [x]}]}", "did you mean 'packages'"),
    ("{envs: [{name: a}], platform: kaggle}", "platform 'kaggle' is not known"),
])
def test_a_broken_kernel_section_is_named(tmp_path: Path, kernel: str, message: str) -> None:
    src = (Path(__file__).resolve().parent.parent / "rubrics" / "assignment3" / "rubric.yaml").read_text()
    start = src.index("kernel:")
    end = src.index("subtasks:")
    pack = tmp_path / "p"
    pack.mkdir()
    (pack / "rubric.yaml").write_text(src[:start] + f"kernel: {kernel}\n\n" + src[end:])
    with pytest.raises(RubricError, match=message):
        load_rubric(pack)
