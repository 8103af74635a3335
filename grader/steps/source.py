"""How a submission is written, read with ``ast`` (never regular expressions over code).

Some rubric items are about code rather than behaviour ("``torch.no_grad()`` is used", "``map`` is
not batched"). Packs ask these questions through the small functions here, over the code cells of
one subtask as they ran. IPython lines (``!cmd``, ``%magic``) are blanked before parsing; a cell
that does not parse answers nothing (the question is then "not found", never an error), and packs
show such findings as what they are: evidence from the source.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable, Iterator, Sequence


def parse_cells(cells: Sequence[str]) -> list[ast.Module]:
    """Every cell that parses, with IPython's ``!``/``%`` lines blanked (line numbers kept)."""
    trees = []
    for src in cells:
        text = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in src.splitlines())
        try:
            trees.append(ast.parse(text))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return trees


def walk(trees: Iterable[ast.AST]) -> Iterator[ast.AST]:
    for tree in trees:
        yield from ast.walk(tree)


def call_name(node: ast.Call) -> str:
    """``f`` for ``f(...)``, ``pad`` for ``self.tokenizer.pad(...)``."""
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def dotted(node: ast.AST) -> str:
    """``torch.float16`` for that attribute chain, ``""`` for anything that is not a plain chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def calls(trees: Iterable[ast.AST], name: str) -> list[ast.Call]:
    """Every call whose function is ``name`` or ``<anything>.name``."""
    return [n for n in walk(trees) if isinstance(n, ast.Call) and call_name(n) == name]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def defs(trees: Iterable[ast.AST], name: str) -> list[ast.FunctionDef | ast.ClassDef]:
    """Functions and classes named ``name`` (the last one is what the notebook used)."""
    return [n for n in walk(trees) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name]


def method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def subscripts(node: ast.AST) -> set[str]:
    """String keys used as ``x["key"]`` anywhere below ``node``."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str):
            out.add(n.slice.value)
    return out


def loops_over(trees: Iterable[ast.AST], name: str) -> list[ast.For]:
    """``for`` loops whose iterable mentions ``name`` (``for batch in tqdm(eval_dataloader)``)."""
    return [n for n in walk(trees) if isinstance(n, ast.For) and name in names_in(n.iter)]


def with_calls(node: ast.AST, name: str) -> bool:
    """Is there a ``with <...>.name(...):`` at or below ``node``?"""
    for n in ast.walk(node):
        if isinstance(n, (ast.With, ast.AsyncWith)):
            for item in n.items:
                if isinstance(item.context_expr, ast.Call) and call_name(item.context_expr) == name:
                    return True
    return False


def commented_lines(cells: Sequence[str], word: str) -> bool:
    """Does a line that mentions ``word`` (as a name) carry a ``#`` comment? (The assignment allows
    another batch size "indicated as a comment".) Read with ``tokenize``: comments are not in the AST."""
    for src in cells:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(src).readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            continue
        lines_with_word = {t.start[0] for t in tokens if t.type == tokenize.NAME and t.string == word}
        if any(t.type == tokenize.COMMENT and t.start[0] in lines_with_word for t in tokens):
            return True
    return False


_UNKNOWN = object()


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def _in_order(tree: ast.AST) -> list[ast.expr | ast.stmt]:
    nodes: list[ast.expr | ast.stmt] = [n for n in ast.walk(tree) if isinstance(n, (ast.expr, ast.stmt))]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def literal_settings(cells: Sequence[str], classes: Iterable[str]) -> tuple[bool, dict[str, object], set[str]]:
    """What the source sets on objects of ``classes`` (``TrainingArguments(...)`` and friends), read
    in the order the cells ran: ``(a constructor call was found, literal values, names set to
    something that is not a literal)``. A later call starts afresh; ``x.field = literal`` changes
    the current values. Checks read settings from here rather than from the kernel, which could
    report anything about its own objects; only settings written as expressions need the kernel."""
    wanted = set(classes)
    found = False
    values: dict[str, object] = {}
    unknown: set[str] = set()
    for tree in parse_cells(cells):
        for node in _in_order(tree):
            if isinstance(node, ast.Call) and call_name(node) in wanted:
                found, values, unknown = True, {}, set()
                for kw in node.keywords:
                    if kw.arg is None:  # **kwargs
                        continue
                    value = _literal(kw.value)
                    if value is _UNKNOWN:
                        unknown.add(kw.arg)
                    else:
                        values[kw.arg] = value
            elif isinstance(node, ast.Assign) and found:
                for target in node.targets:
                    if isinstance(target, ast.Attribute):
                        value = _literal(node.value)
                        if value is _UNKNOWN:
                            unknown.add(target.attr)
                            values.pop(target.attr, None)
                        else:
                            values[target.attr] = value
                            unknown.discard(target.attr)
    return found, values, unknown
