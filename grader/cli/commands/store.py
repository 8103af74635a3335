"""``grader store build|check|fetch``: make, inspect or download the offline model and data store.

The handlers activate the store (environment variables) before importing the builder, because the
builder imports transformers and datasets, which read their settings once, at import.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from grader.cli.main import EXIT_OK, HarnessError
from grader.kernel import store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("store", help="build, check or fetch the offline model/data store")
    sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--store",
            type=Path,
            default=None,
            help=f"store folder (default: ${store.ENV_VAR} or {store.DEFAULT_STORE})",
        )
        p.add_argument("--rubric", default=None, help="the pack whose store_builder / store_fetcher to use "
                       "(default: $GRADER_RUBRIC, or the only pack installed)")
        return p

    build = add("build", "build the tiny offline store from nothing (no network, under a minute)")
    build.add_argument("--force", action="store_true", help="rebuild even if the store is complete")
    build.set_defaults(handler=_build)
    check = add("check", "check that the store is complete")
    check.add_argument("--verify", action="store_true", help="also compare file hashes (slower)")
    check.set_defaults(handler=_check)
    fetch = add("fetch", "download the real models and data sets into the store (needs internet)")
    fetch.add_argument("ids", nargs="*", metavar="ID", help="only add these models (hub ids) to the existing store")
    fetch.add_argument("--force", action="store_true", help="replace an existing store")
    fetch.set_defaults(handler=_fetch)


def _root(args: argparse.Namespace) -> Path:
    return Path(args.store).resolve() if args.store is not None else store.store_root()


def _builder_module(args: argparse.Namespace, key: str = "store_builder") -> tuple[Any, str] | None:
    """The rubric pack's builder (or fetcher), "module:function"; None when the pack needs no store."""
    from grader.pack.rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(args.rubric)
    except RubricError as exc:
        raise HarnessError(str(exc)) from exc
    target = getattr(rubric, key)
    if not target:
        print(f"the rubric '{rubric.assignment}' declares no {key}: it needs no offline store")
        return None
    module_name, _, func = target.partition(":")
    try:
        return importlib.import_module(module_name), func
    except ImportError as exc:
        raise HarnessError(f"cannot import {target} ({key} of {rubric.folder / 'rubric.yaml'}): {exc}") from exc


def _activate(root: Path, offline: bool = True) -> None:
    try:
        store.activate(root, offline=offline)
    except store.StoreActivationError as exc:
        raise HarnessError(str(exc)) from exc


def _build(args: argparse.Namespace) -> int:
    root = _root(args)
    _activate(root)
    found = _builder_module(args)
    if found is None:
        return EXIT_OK
    module, func = found
    try:
        summary = getattr(module, func)(root, force=args.force)
    except Exception as exc:
        raise HarnessError(
            f"building the store at {root} failed: {type(exc).__name__}: {exc}",
            hint="nothing was replaced; rerun with --force after fixing the cause",
        ) from exc
    if summary.get("built"):
        print(f"built {root} in {summary.get('seconds')} s ({summary.get('bytes', 0) / 1e6:.1f} MB)")
    else:
        print(f"{root} is complete; nothing to do (--force rebuilds)")
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    root = _root(args)
    _activate(root)
    found = _builder_module(args)
    if found is None:
        return EXIT_OK
    module, _ = found
    required = getattr(module, "REQUIRED_IDS", None)
    try:
        manifest = store.check_store(root, required, verify=args.verify)
    except store.StoreMissing as exc:
        raise HarnessError(str(exc)) from exc
    expected = getattr(module, "BUILDER", None)
    built_here = manifest.builder.split("@")[0] == str(expected).split("@")[0]  # a fetched store has its own
    if expected and built_here and manifest.builder != expected:
        raise HarnessError(
            f"offline store at {root} was written by {manifest.builder or 'an unknown builder'}, "
            f"this grader needs {expected}",
            hint=f"rebuild it with: {store.build_command(root)} --force",
        )
    for entry in manifest.entries:
        size = sum(f.size for f in entry.files)
        print(
            f"{entry.kind:8} {entry.id:40} {entry.source:5} {len(entry.files):3} files {size / 1e6:8.1f} MB"
        )
    print(f"{root}: complete")
    return EXIT_OK


def _fetch(args: argparse.Namespace) -> int:
    root = _root(args)
    _activate(root, offline=False)
    found = _builder_module(args, "store_fetcher")
    if found is None:
        return EXIT_OK
    module, func = found
    fetch = getattr(module, func, None)
    if fetch is None:
        raise HarnessError(f"{module.__name__} has no {func}()")
    try:
        summary = fetch(root, force=args.force, ids=tuple(args.ids or ()))
    except Exception as exc:
        raise HarnessError(
            f"fetching the store into {root} failed: {type(exc).__name__}: {exc}",
            hint="`grader store build` builds the tiny offline store without network",
        ) from exc
    print(json.dumps(summary, indent=2))
    return EXIT_OK
