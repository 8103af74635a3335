"""Command line: ``grader <command> ...``.

Each command lives in ``grader/cli/commands/<name>.py`` and exposes ``register(subparsers)``; the
handler it sets returns an exit code. Exit codes (documented in the README):
0 every file got a result (whatever the scores), 1 the harness or a rubric failed, 2 wrong usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_HARNESS = 1
EXIT_USAGE = 2

COMMANDS = ("grade", "check", "batch", "manual", "review", "export", "store", "env", "new_pack")


class UsageError(Exception):
    """Wrong usage the user can fix; printed without a traceback, exit code 2."""


class HarnessError(Exception):
    """The harness or a rubric failed; printed with a hint, exit code 1."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Grade Jupyter notebook submissions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"grader.cli.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"grader.cli.commands.{name}":
                raise
            continue  # not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from grader.safety.escape import install_safe_logging

    install_safe_logging()  # log lines quote students' file names: no escape sequences in the terminal
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"grader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HarnessError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_HARNESS
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
