"""``grader env build|list``: the kernel environments a rubric declares (see ``grader.kernel.envs``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from grader.cli.main import EXIT_OK, HarnessError
from grader.kernel import envs as kernel_env


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("env", help="build or list the kernel environments of a rubric")
    sub = parser.add_subparsers(dest="env_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build the rubric's kernel environments (idempotent)")
    build.add_argument("--rubric", default=None, help="rubric folder or name under rubrics/ (default: $GRADER_RUBRIC, or the only pack installed)")
    build.add_argument("--env", default=None, help="only this environment (default: all the rubric declares)")
    build.add_argument("--force", action="store_true", help="rebuild even if complete")
    build.set_defaults(handler=_build)
    listing = sub.add_parser("list", help="show the rubric's kernel environments and whether they are built")
    listing.add_argument("--rubric", default=None)
    listing.set_defaults(handler=_list)


def _rubric(args: argparse.Namespace) -> Any:
    from grader.pack.rubric import RubricError, load_rubric

    try:
        return load_rubric(args.rubric)
    except RubricError as exc:
        raise HarnessError(str(exc)) from exc


def _build(args: argparse.Namespace) -> int:
    from grader.pack.rubric import RubricError

    rubric = _rubric(args)
    try:
        specs = [rubric.kernel.env(args.env)] if args.env else list(rubric.kernel.envs)
    except RubricError as exc:
        raise HarnessError(str(exc)) from exc
    for spec in specs:
        if spec.is_grader_env:
            print(f"{spec.name}: the grader's own interpreter ({sys.executable}); nothing to build")
            continue
        try:
            folder, built = kernel_env.build(spec, log=lambda line: print(f"  {line}", file=sys.stderr), force=args.force)
        except RuntimeError as exc:
            raise HarnessError(f"building kernel environment '{spec.name}' failed: {exc}",
                               hint="check network access to the package index; rerun `grader env build`") from exc
        versions = ", ".join(f"{k} {v}" for k, v in kernel_env.installed_versions(spec).items())
        print(f"{spec.name}: {'built' if built else 'already built'} at {folder} ({versions})")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    rubric = _rubric(args)
    for spec in rubric.kernel.envs:
        state = "built" if kernel_env.is_built(spec) else "NOT BUILT (grader env build)"
        default = " (default)" if spec.name == rubric.kernel.default_env else ""
        where = sys.executable if spec.is_grader_env else kernel_env.env_dir(spec)
        print(f"{spec.name}{default}: {spec.title} - {state} - {where}")
    return EXIT_OK
