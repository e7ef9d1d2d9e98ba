"""Solution regions: find them in the source, check them, stub them, put code back into them.

Course staff mark the code students will write the way nbgrader does, with two comment
lines around it inside a function body: a line that starts with ``### BEGIN SOLUTION``
and, at the same indentation, a line that starts with ``### END SOLUTION``. Regions never
nest, and every BEGIN has its END.

The student release (build.py) replaces each region, marker lines included, by a stub at
the same indentation; every line around it stays as it was::

    ### BEGIN YOUR CODE (A1: Linear.backward)
    raise NotImplementedError(
        "A1 Linear.backward: <the hint, "
        "wrapped at about 100 columns>"
    )
    ### END YOUR CODE

The stub keeps the module importable (the region is inside a function, so the ``raise``
runs only when the function is called). The grader (grade.py) finds the regions of a
submission again, of either kind, to put the reference code back into the regions of the
assignments it is not grading.

A region's hint comes from lines inside it that start with ``# HINT:`` (kept in the stub as
comments), or else from the table in spec.py.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUDENT_BEGIN, STUDENT_END = "### BEGIN YOUR CODE", "### END YOUR CODE"
HINT = "# HINT:"


class MarkerError(ValueError):
    """The solution markers of a source file are malformed; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    """One solution region: the marker lines ``start`` and ``stop`` (0-based) and what lies between."""

    path: str                # the file, relative to the package: "layers.py"
    start: int               # index of the BEGIN line
    stop: int                # index of the END line
    indent: str              # the whitespace before the BEGIN marker
    qualname: str            # the function it lies in: "Linear.backward"
    body: tuple[str, ...]    # the lines between the markers, line endings kept
    ordinal: int = 1         # 2 for the second region in the same function, ...

    @property
    def key(self) -> str:
        """How spec.py names the region: "nn/layers.py:Linear.backward" (plus "#2" for a second one)."""
        suffix = f"#{self.ordinal}" if self.ordinal > 1 else ""
        return f"{self.path}:{self.qualname}{suffix}"

    @property
    def hint(self) -> str:
        """The text of the ``# HINT:`` lines inside the region, joined ("" when there are none)."""
        return " ".join(line.strip()[len(HINT):].strip() for line in self.body if line.strip().startswith(HINT))


def scan(lines: Sequence[str], path: str, begins: Iterable[str] = (BEGIN,), ends: Iterable[str] = (END,),
         strict: bool = True) -> list[tuple[int, int]]:
    """The (BEGIN index, END index) of every region in ``lines``, or a MarkerError.

    A line is a marker when its stripped text starts with one of ``begins`` / ``ends``.
    Always refused: nesting, an END without a BEGIN, a BEGIN without an END. With
    ``strict`` also an END indented unlike its BEGIN, and an empty region.
    """
    begins, ends = tuple(begins), tuple(ends)
    spans: list[tuple[int, int]] = []
    opened: int | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(begins):
            if opened is not None:
                raise MarkerError(f"{path}:{i + 1}: nested markers: a BEGIN at line {i + 1} lies inside the region "
                                  f"opened at line {opened + 1}; close that region first")
            opened = i
        elif text.startswith(ends):
            if opened is None:
                raise MarkerError(f"{path}:{i + 1}: unbalanced markers: the END at line {i + 1} has no BEGIN before it")
            if strict and _indent(line) != _indent(lines[opened]):
                raise MarkerError(f"{path}:{i + 1}: the END at line {i + 1} is indented differently from its BEGIN "
                                  f"at line {opened + 1}")
            if strict and not any(s.strip() and not s.strip().startswith("#") for s in lines[opened + 1:i]):
                raise MarkerError(f"{path}:{opened + 1}: the region at lines {opened + 1}-{i + 1} holds no code")
            spans.append((opened, i))
            opened = None
    if opened is not None:
        raise MarkerError(f"{path}:{opened + 1}: unbalanced markers: the BEGIN at line {opened + 1} "
                          f"is never closed by an END")
    return spans


def find_regions(text: str, path: str) -> list[Region]:
    """The solution regions of one source file, checked: balanced, not nested, each inside a function."""
    lines = text.splitlines(keepends=True)
    spans = scan(lines, path)
    if not spans:
        return []
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as err:
        raise MarkerError(f"{path}:{err.lineno}: the file does not parse ({err.msg})") from None
    functions = _function_spans(tree)
    regions: list[Region] = []
    for start, stop in spans:
        code = [i + 1 for i in range(start + 1, stop) if lines[i].strip() and not lines[i].strip().startswith("#")]
        inside = [(a, b, name) for a, b, name in functions if a < code[0] and code[-1] <= b]
        if not inside:
            raise MarkerError(f"{path}:{start + 1}: the region at lines {start + 1}-{stop + 1} is not inside a "
                              f"function body (a stub there would break the import)")
        qualname = max(inside)[2]                     # the innermost: the one that starts last
        ordinal = 1 + sum(r.qualname == qualname for r in regions)
        regions.append(Region(path, start, stop, _indent(lines[start]), qualname,
                              tuple(lines[start + 1:stop]), ordinal))
    return regions


def stub_lines(region: Region, label: str, hint: str) -> list[str]:
    """The lines that replace ``region`` in the student release (label: "A1: Linear.backward")."""
    pad = region.indent
    kept_hints = [line for line in region.body if line.strip().startswith(HINT)]
    chunks = textwrap.wrap(f"{label.replace(':', '')}: {hint}", width=max(40, 96 - len(pad)))
    message = [f"{pad}    {chunk + ' ' if i < len(chunks) - 1 else chunk!r}\n" for i, chunk in enumerate(chunks)]
    return [f"{pad}{STUDENT_BEGIN} ({label})\n", *kept_hints, f"{pad}raise NotImplementedError(\n", *message,
            f"{pad})\n", f"{pad}{STUDENT_END}\n"]


def replace_regions(text: str, spans: Sequence[tuple[int, int]],
                    replacements: Mapping[int, Sequence[str]], keep_markers: bool = False) -> str:
    """Rewrite ``text`` with region number i (in ``spans`` order) replaced by ``replacements[i]``.

    ``keep_markers=False`` replaces the marker lines too (building a stub); ``True`` replaces
    only the lines between them (putting code back into a submission's regions).
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for i in sorted(replacements, reverse=True):      # from the bottom, so earlier indices stay valid
        start, stop = spans[i]
        if keep_markers:
            lines[start + 1:stop] = list(replacements[i])
        else:
            lines[start:stop + 1] = list(replacements[i])
    return "".join(lines)


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def _function_spans(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function and method, 1-based."""
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                found.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found
