"""The grader's small runtime inside a student's kernel: notes for the report, records of the
objects a notebook made, and an import hook that applies a rubric pack's shims.

A pack declares its shims (``kernel: {shims: [shims.py]}`` in ``rubric.yaml``): modules of patches
``PATCHES = {"library.module": patch(module)}``, applied when the library module is first imported
(or at once, if it already is). The grader sends their source into the kernel before the first
cell (``load_shims``), so they need not be importable there, and knows nothing of what they patch.

Runs in the untrusted kernel: it only makes code run and records notes; nothing here decides a
score. Standard library only (it is imported in every kernel environment, before any library).
"""

from __future__ import annotations

import importlib.abc
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

DRIFT: dict[str, str] = {}  # key -> note (first use only), read after the notebook; "colab:"/"env:" keys: the Colab group
# Objects whose later rebinding would hide them from the probes (a notebook reuses names across
# subtasks): (kind, IPython execution count of the cell that made it, object).
CREATED: list[tuple[str, int | None, Any]] = []
PATCHES: dict[str, Callable[[Any], None]] = {}
_PATCHED: set[str] = set()


def note(key: str, message: str) -> None:
    DRIFT.setdefault(key, message)


def execution_count() -> int | None:
    """The IPython execution count of the cell running now (None outside IPython)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return int(shell.execution_count) if shell is not None else None
    except Exception:
        return None


def record(kind: str, obj: Any) -> None:
    """Remember that the running cell made ``obj`` (a TrainingArguments, a Trainer, a train() call)."""
    CREATED.append((kind, execution_count(), obj))


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, name: str) -> None:
        self._inner = inner
        self._name = name

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        # a library may replace its own entry in sys.modules (transformers: a lazy module)
        _apply(self._name, sys.modules.get(self._name, module))


class _PatchingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in PATCHES or fullname in _PATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, fullname)
                return spec
        return None


def _apply(name: str, module: Any) -> None:
    if name in _PATCHED:
        return
    _PATCHED.add(name)
    try:
        PATCHES[name](module)
    except Exception as exc:  # never break the student's import because a shim failed
        note(f"compat:{name}", f"the grader could not install its compatibility shim for {name}: {exc!r}")


def install(patches: Mapping[str, Callable[[Any], None]]) -> None:
    """Apply ``patches`` when their modules are imported; at once to modules already imported."""
    PATCHES.update(patches)
    if not any(isinstance(f, _PatchingFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchingFinder())
    for name in patches:
        if name in sys.modules:
            _apply(name, sys.modules[name])


def preamble(shims: Sequence[tuple[str, str]]) -> str:
    """Kernel code that imports this runtime and loads each ``(name, source)`` shim module, binding
    no name the notebook could see. Run in the grader's process (``Rubric.kernel_preamble``)."""
    lines = ["import grader.kernel.runtime as __grader_runtime"]
    lines += [f"__grader_runtime.load_shims({source!r}, {name!r})" for name, source in shims]
    lines.append("del __grader_runtime")
    return "\n".join(lines) + "\n"


DRIFT_PROBE = "print(__import__('json').dumps(dict(getattr(__import__('sys').modules.get('grader.kernel.runtime'), 'DRIFT', {}))))\n"


def load_shims(source: str, name: str) -> types.ModuleType:
    """Run a pack's shims module from its source (as ``grader_shims_<name>``) and install its PATCHES."""
    module = types.ModuleType(f"grader_shims_{name}")
    module.__file__ = f"<shims {name}>"
    sys.modules[module.__name__] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    install(getattr(module, "PATCHES", {}))
    return module
