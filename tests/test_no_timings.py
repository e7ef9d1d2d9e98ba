"""No docstring or comment in tinyvae/ carries a timing: what code computes and why goes there,
how fast it runs goes in docs/benchmarks.md, with the command that measured it."""

import ast
import io
import re
import tokenize
from pathlib import Path

import tinyvae

PACKAGE = Path(tinyvae.__file__).resolve().parent
TIMING = re.compile(r"\b\d+(\.\d+)?\s?(ms|µs|us|ns|s|s/epoch|s/step)(?!\w)"
                    r"|\d*\s?[×x] (faster|slower)|times (faster|slower)|GFLOP"
                    r"|(tenths|hundredths) of a second", re.IGNORECASE)


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every docstring and comment of a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    return found


def timings(source: str) -> list[str]:
    return [f"{line}: {m.group(0)!r}" for line, text in prose(source) for m in TIMING.finditer(text)]


def test_no_docstring_or_comment_carries_a_timing():
    found = {path.relative_to(PACKAGE).as_posix(): hits for path in sorted(PACKAGE.rglob("*.py"))
             if "__pycache__" not in path.parts and (hits := timings(path.read_text(encoding="utf-8")))}
    assert found == {}


def test_the_timing_check_can_fail():
    source = ('"""Fast."""\n\ndef f():\n    """One pass: 0.14 ms per update, 5× faster."""\n'
              '    return 1  # 3.2 s per epoch\n')
    assert timings(source) == ["4: '0.14 ms'", "4: '5× faster'", "5: '3.2 s'"]
    assert timings('"""Shapes (N, D), 8×8 images, 4× less memory, 10 epochs."""\n') == []
