"""``grader review``: the TA's page for written answers, served from the gradebook."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

from grader.cli.main import EXIT_OK, HarnessError, UsageError
from grader.course.gradebook import find_gradebook

DESCRIPTION = """\
Score the written answers (manual items) in the browser: one question at a time with every
student's answer under the reference answer and the rubric's bullets, answers grouped by meaning,
or one student at a time. j/k move, digits type points, Enter saves. Every change goes to the
gradebook at once, and result.json, the reports, grades.csv and the overview are rewritten; the
CSV/YAML sheet (grader manual) reads and writes the same rows. An edit made on a stale page (another
TA or a sheet import saved in between) is refused and the page shows what stands.

The server listens on 127.0.0.1 and prints a URL with a random token; only that URL opens it.
"""

EPILOG = """\
examples:
  grader review --out out                      # the gradebook of `grader batch ... --out out`
  grader review --gradebook gb.sqlite --port 0 # any free port
  grader review --out out --host 0.0.0.0       # share on the LAN (plain HTTP, still behind the token)

exit codes: 0 stopped (Ctrl+C; every saved change is in the gradebook and the files); 1 the review
packages are missing; 2 wrong usage (no gradebook, a busy port, a bad --host).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("review", help="score the written answers in the browser", description=DESCRIPTION,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gradebook", type=Path, metavar="FILE",
                   help="gradebook file or a batch's output folder (default: OUT/gradebook.sqlite, else ./gradebook.sqlite)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the batch's output folder: grades.csv and index.html are rewritten there (default: the folder the batch recorded)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    p.add_argument("--threshold", type=float, default=None, metavar="D",
                   help="cosine distance under which answers are grouped: lower makes more, tighter groups (default: 0.45, "
                        "chosen by benchmarks/review_clusters.py)")
    p.add_argument("--no-groups", action="store_true", help="list answers by submission, without grouping (no model is loaded)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    given = args.gradebook or args.out
    try:
        gradebook = find_gradebook(given)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is not None and not args.out.is_dir():
        raise UsageError(f"{args.out}: no such folder")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be 0-65535")
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        if args.host != "localhost":
            raise UsageError(f"--host {args.host!r}: give an IP address (127.0.0.1, 0.0.0.0, a LAN address)") from None
    try:
        import uvicorn

        from grader.review.app import ReviewConfig, create_app
        from grader.review.clustering import DEFAULT_THRESHOLD
    except ImportError as exc:
        raise HarnessError(f"grader review needs its web and model packages: {exc}",
                           hint="pip install -e '.[review]' (scripts/setup.sh installs it)") from exc

    config = ReviewConfig(gradebook=gradebook, out_dir=args.out, grouping=not args.no_groups,
                          threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold)
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False))
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"grader review: {gradebook}")
    print(f"open  http://{shown}:{port}/{config.token}/")
    if host not in ("127.0.0.1", "::1", "localhost"):
        print("note: listening beyond this machine over plain HTTP; anyone with the URL can score", file=sys.stderr)
    print("Ctrl+C stops the server; every saved change is already in the gradebook.")
    server.run(sockets=[sock])
    return EXIT_OK


def _bind(host: str, port: int) -> Any:
    """Bind before starting, so that a busy port is a usage error and port 0 shows the real port."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror} (try --port 0)") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
