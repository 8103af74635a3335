"""The rubric pack of one assignment: ``rubrics/<name>/rubric.yaml`` loaded into typed objects.

A pack is a folder with ``rubric.yaml`` (points, checks, manual items, limits), ``probes.py``
(functions sent into the kernel, as source), ``checks.py`` (trusted comparisons, imported in the
grader's process) and optionally ``templates/`` (report overrides). An unknown key in the YAML is
an error with a "did you mean" hint: a typo must not silently drop a setting.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from grader.kernel.envs import EnvSpec

RUBRIC_SCHEMA_VERSION = 1
RUBRICS_DIR = Path(__file__).resolve().parents[2] / "rubrics"
ENV_VAR = "GRADER_RUBRIC"


class RubricError(Exception):
    """The rubric pack is broken (a harness-side failure: exit code 1)."""


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 300.0
    deadline: float = 1800.0
    max_train_steps: int = 2
    probe_timeout: float = 300.0
    memory_gib: float = 4.0
    cpu_seconds: int = 1800
    max_processes: int = 256
    max_output_mib: float = 8.0
    gpu: bool = False  # submissions need a GPU: on a Dask cluster they go only to workers with a GPU resource


@dataclass(frozen=True)
class Subtask:
    id: str
    title: str
    points: float


@dataclass(frozen=True)
class CheckSpec:
    id: str
    subtask: str
    points: float
    title: str
    probes: tuple[str, ...] = ()
    hidden: bool = False


@dataclass(frozen=True)
class ManualSpec:
    id: str
    subtask: str
    points: float
    prompt: str
    answer_from: str = ""  # the subtask whose "Answer" cells hold the student's text
    reference: str = ""  # name of a reference answer (rubric checks module resolves it)
    bullets: tuple[str, ...] = ()  # the official rubric's bullets for this item, shown to TAs (grader review)
    suggest: bool = False  # the pack suggests points from the answer (``suggest(item_id, text)``); a TA confirms
    part: str = ""  # the numbered part ("1.", "2." ...) of the answer this item scores; "" for all of it


@dataclass(frozen=True)
class KernelSettings:
    """Where the pack's notebooks run: the environments it declares (``grader env build``), the
    platform they were written for (``colab``: Colab's paths, ``google.colab`` and shell habits are
    emulated and named in the report), the pack's shims (files of the pack, sent into every kernel
    before the first cell: ``grader.kernel.runtime``) and the modules imported before the first cell
    (what every notebook imports first; a kernel warmed ahead has them done off the critical path)."""

    envs: tuple[EnvSpec, ...] = (EnvSpec("current", "the grader's own libraries"),)
    default_env: str = "current"
    platform: str = ""
    shims: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()

    def env(self, name: str | None = None) -> EnvSpec:
        wanted = name or self.default_env
        for spec in self.envs:
            if spec.name == wanted:
                return spec
        known = ", ".join(e.name for e in self.envs)
        raise RubricError(f"no kernel environment '{wanted}' in this rubric (known: {known})")


@dataclass(frozen=True)
class Rubric:
    assignment: str
    title: str
    total_points: float
    folder: Path
    subtasks: tuple[Subtask, ...]
    checks: tuple[CheckSpec, ...]
    manual: tuple[ManualSpec, ...]
    limits: Limits = field(default_factory=Limits)
    kernel: KernelSettings = field(default_factory=KernelSettings)
    saved_files: tuple[str, ...] = ()  # paths (relative to the notebook's folder) read after the kernel stops
    store_builder: str = ""
    store_fetcher: str = ""
    hidden_seed: int = 0
    schema_version: int = RUBRIC_SCHEMA_VERSION

    @property
    def subtask_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.subtasks)

    def probe_plan(self, public_only: bool = False) -> dict[str, tuple[str, ...]]:
        """The probes each subtask's checks need, run after that subtask's last cell."""
        plan: dict[str, list[str]] = {}
        for c in self.checks:
            if public_only and c.hidden:
                continue
            names = plan.setdefault(c.subtask, [])
            names += [p for p in c.probes if p not in names]
        return {k: tuple(v) for k, v in plan.items() if v}

    def probe_names(self, public_only: bool = False) -> tuple[str, ...]:
        names: list[str] = []
        for c in self.checks:
            if public_only and c.hidden:
                continue
            for p in c.probes:
                if p not in names:
                    names.append(p)
        return tuple(names)

    @cached_property
    def probes_source(self) -> str:
        return (self.folder / "probes.py").read_text(encoding="utf-8")

    def probe_source(self, subtask: str) -> str:
        """What of ``probes.py`` goes into the kernel after ``subtask``: its shared part (before the
        first ``# --- <subtask> ---`` line) and that subtask's section. A subtask's probe code then
        reaches the kernel only once that subtask's cells have run, so a notebook cannot study it
        beforehand. A file without sections goes whole."""
        sections = _probe_sections(self.probes_source)
        if subtask not in sections:
            return self.probes_source
        return sections[""] + "\n" + sections[subtask]

    def fingerprint(self, kernel_env: str | None = None) -> str:
        """The rubric's one fingerprint (``pack_fingerprint``) for grading in ``kernel_env``."""
        return pack_fingerprint(self.folder, self.kernel.env(kernel_env))

    @cached_property
    def kernel_preamble(self) -> str:
        """The code run in every kernel before the first cell: the grader's kernel runtime, then the
        pack's shims, sent as source (the pack's folder is hidden from the kernel). Standard library
        only until a shim's patches fire on a library's import."""
        from grader.kernel.runtime import preamble

        return preamble([(Path(shim).stem, (self.folder / shim).read_text(encoding="utf-8")) for shim in self.kernel.shims])

    @cached_property
    def checks_module(self) -> ModuleType:
        """The pack's ``checks.py``. A pack with an ``__init__.py`` is imported as a package
        (``grader_pack_<assignment>``), so its modules import each other with relative imports."""
        if (self.folder / "__init__.py").is_file():
            package = f"grader_pack_{_identifier(self.assignment)}"
            _import_file(package, self.folder / "__init__.py", package=True)
            return _import_file(f"{package}.checks", self.folder / "checks.py")
        return _import_file(f"grader_rubric_{self.assignment}_checks", self.folder / "checks.py")

    def template_dir(self) -> Path | None:
        d = self.folder / "templates"
        return d if d.is_dir() else None


_SECTION = re.compile(r"^# --- (\S+) -+\s*$", re.MULTILINE)


def _probe_sections(text: str) -> dict[str, str]:
    """``probes.py`` cut at its ``# --- <subtask> ----`` lines; ``""`` is the part before the first."""
    marks = list(_SECTION.finditer(text))
    out = {"": text[: marks[0].start()] if marks else text}
    for m, nxt in zip(marks, [*marks[1:], None], strict=True):
        out[m.group(1)] = text[m.start(): nxt.start() if nxt else len(text)]
    return out


def _identifier(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def _import_file(name: str, path: Path, package: bool = False) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[str(path.parent)] if package else None)
    if spec is None or spec.loader is None:
        raise RubricError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise RubricError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def _typed(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise RubricError(f"{where}: expected a mapping, found {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(sorted(known))})"
            raise RubricError(f"{where}: unknown key '{key}'{hint}")
    kwargs = dict(data)
    for f in fields(cls):
        if f.name in kwargs and f.type in ("tuple[str, ...]",) and isinstance(kwargs[f.name], list):
            kwargs[f.name] = tuple(str(x) for x in kwargs[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RubricError(f"{where}: {exc}") from exc


def installed_packs() -> list[str]:
    """The packs shipped with the grader (``rubrics/<name>/rubric.yaml``)."""
    return sorted(d.name for d in RUBRICS_DIR.iterdir() if (d / "rubric.yaml").is_file()) if RUBRICS_DIR.is_dir() else []


def resolve_rubric_dir(name_or_path: str | Path | None) -> Path:
    """A pack by folder or by name; without one, ``$GRADER_RUBRIC``, else the only pack installed.
    The grader has no favourite assignment: with several packs and no name, it asks."""
    if name_or_path is None:
        name_or_path = os.environ.get(ENV_VAR) or None
    known = installed_packs()
    if name_or_path is None:
        if len(known) == 1:
            return RUBRICS_DIR / known[0]
        raise RubricError(f"several rubric packs are installed ({', '.join(known) or 'none'}): name one with "
                          f"--rubric NAME (or set {ENV_VAR})" if known else "no rubric pack is installed (rubrics/<name>/rubric.yaml)")
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if (RUBRICS_DIR / str(name_or_path)).is_dir():
        return RUBRICS_DIR / str(name_or_path)
    close = difflib.get_close_matches(str(name_or_path), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise RubricError(f"no rubric '{name_or_path}'{hint} (known: {', '.join(known) or 'none'})")


def load_rubric(name_or_path: str | Path | None = None) -> Rubric:
    folder = resolve_rubric_dir(name_or_path)
    path = folder / "rubric.yaml"
    try:
        raw = path.read_bytes()
        data = yaml.safe_load(raw)
    except OSError as exc:
        raise RubricError(f"{path}: cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RubricError(f"{path}: expected a mapping at the top level")
    if data.get("schema_version") != RUBRIC_SCHEMA_VERSION:
        raise RubricError(f"{path}: schema_version {data.get('schema_version')!r}, expected {RUBRIC_SCHEMA_VERSION}")
    top = {"schema_version", "assignment", "title", "total_points", "limits", "kernel", "saved_files", "subtasks", "checks", "manual", "store_builder", "store_fetcher", "hidden_seed"}
    for key in data:
        if key not in top:
            close = difflib.get_close_matches(str(key), sorted(top), n=1)
            raise RubricError(f"{path}: unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    subtasks = tuple(_typed(Subtask, {**s, "id": str(s.get("id"))} if isinstance(s, dict) else s, f"{path}: subtasks[{i}]") for i, s in enumerate(data.get("subtasks") or []))
    checks = tuple(_typed(CheckSpec, {**c, "subtask": str(c.get("subtask"))} if isinstance(c, dict) else c, f"{path}: checks[{i}]") for i, c in enumerate(data.get("checks") or []))
    manual = tuple(_typed(ManualSpec, {**m, "subtask": str(m.get("subtask")), "id": str(m.get("id"))} if isinstance(m, dict) else m, f"{path}: manual[{i}]") for i, m in enumerate(data.get("manual") or []))
    rubric = Rubric(
        assignment=str(data.get("assignment", folder.name)),
        title=str(data.get("title", folder.name)),
        total_points=float(data.get("total_points", 0)),
        folder=folder,
        subtasks=subtasks,
        checks=checks,
        manual=manual,
        limits=_typed(Limits, data.get("limits") or {}, f"{path}: limits"),
        kernel=_kernel_settings(data.get("kernel"), path),
        saved_files=tuple(str(x) for x in (data.get("saved_files") or ())),
        store_builder=str(data.get("store_builder", "")),
        store_fetcher=str(data.get("store_fetcher", "")),
        hidden_seed=int(data.get("hidden_seed", 0)),
    )
    validate(rubric, path)
    from grader.pack.validate import validate_pack  # the joins between rubric.yaml, probes.py, checks.py

    validate_pack(rubric)
    return rubric


def _kernel_settings(data: Any, path: Path) -> KernelSettings:
    if data is None:
        return KernelSettings()
    where = f"{path}: kernel"
    if not isinstance(data, dict):
        raise RubricError(f"{where}: expected a mapping, found {type(data).__name__}")
    raw = dict(data)
    envs_raw = raw.pop("envs", None)
    if not isinstance(envs_raw, list) or not envs_raw:
        raise RubricError(f"{where}: 'envs' must list at least one environment")
    envs = []
    for i, e in enumerate(envs_raw):
        spec = _typed(EnvSpec, e, f"{where}.envs[{i}]")
        if not isinstance(spec.packages, tuple) or not all(isinstance(p, str) for p in spec.packages):
            raise RubricError(f"{where}.envs[{i}]: 'packages' must be a list of pip requirement strings")
        envs.append(spec)
    settings = _typed(KernelSettings, {**raw, "envs": tuple(envs), "default_env": str(raw.get("default_env", envs[0].name))}, where)
    names = [e.name for e in envs]
    if len(set(names)) != len(names):
        raise RubricError(f"{where}: duplicated environment names {names}")
    if settings.default_env not in names:
        raise RubricError(f"{where}: default_env '{settings.default_env}' is not one of {names}")
    if settings.platform not in ("", "colab"):
        raise RubricError(f"{where}: platform '{settings.platform}' is not known (known: colab)")
    for shim in settings.shims:
        file = path.parent / shim
        if Path(shim).is_absolute() or ".." in Path(shim).parts or file.suffix != ".py":
            raise RubricError(f"{where}.shims: '{shim}' must be a .py file inside the pack")
        if not file.is_file():
            raise RubricError(f"{where}.shims: '{shim}' does not exist ({file})")
    for module in settings.imports:
        if not all(part.isidentifier() for part in module.split(".")):
            raise RubricError(f"{where}.imports: '{module}' is not a module name")
    return settings


def validate(rubric: Rubric, path: Path) -> None:
    """Internal consistency: ids unique, every item in a known subtask, points add up."""
    ids = rubric.subtask_ids
    if len(set(ids)) != len(ids):
        raise RubricError(f"{path}: duplicated subtask ids")
    seen: set[str] = set()
    items: list[CheckSpec | ManualSpec] = [*rubric.checks, *rubric.manual]
    for item in items:
        if item.id in seen:
            raise RubricError(f"{path}: duplicated check/manual id '{item.id}'")
        seen.add(item.id)
        if item.subtask not in ids:
            raise RubricError(f"{path}: '{item.id}' names unknown subtask '{item.subtask}'")
        if item.points < 0:
            raise RubricError(f"{path}: '{item.id}' has negative points")
    for s in rubric.subtasks:
        got = sum(c.points for c in rubric.checks if c.subtask == s.id) + sum(m.points for m in rubric.manual if m.subtask == s.id)
        if abs(got - s.points) > 1e-9:
            raise RubricError(f"{path}: subtask {s.id} is worth {s.points} points but its checks and manual items add up to {got:g}")
    total = sum(s.points for s in rubric.subtasks)
    if abs(total - rubric.total_points) > 1e-9:
        raise RubricError(f"{path}: total_points is {rubric.total_points:g} but the subtasks add up to {total:g}")


_POINT_KEYS = ("points", "max_points", "total_points")


def pack_fingerprint(folder: Path | None, env: EnvSpec | None = None) -> str:
    """What decides how a notebook is executed and checked, as one hash: the grader's version, every
    file of the pack (checks, probes, shims, templates, rubric.yaml) and the kernel environment
    (its name and what it holds). A stored run counts as done only under the same fingerprint.

    Points are left out on purpose: changing them re-scores stored check results instead of
    executing every notebook again (``grader.steps.score.rescore_result``)."""
    import json

    import grader

    h = hashlib.sha256(f"grader {grader.__version__}\n".encode())
    if env is not None:
        from grader.kernel.envs import digest

        h.update(f"kernel {env.name} {digest(env)}\n".encode())
    if folder is None or not folder.is_dir():
        return h.hexdigest()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        if path.suffix in (".yaml", ".yml"):
            try:
                doc = yaml.safe_load(data)
            except yaml.YAMLError:
                doc = None
            if doc is not None:
                data = json.dumps(_without_points(doc), sort_keys=True, default=str).encode()
        h.update(f"{rel}\n{len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


def _without_points(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_points(v) for k, v in doc.items() if k not in _POINT_KEYS}
    if isinstance(doc, list):
        return [_without_points(v) for v in doc]
    return doc
