"""``python -m tinyvae.site``: build the course website from README.md, docs/ and notebooks/.

    python -m tinyvae.site                 # → _site/html/index.html (git-ignored)
    python -m tinyvae.site --out DIR       # → DIR/html; DIR/jupyter_cache, DIR/doctrees beside it

Sphinx with myst-nb and sphinx-book-theme (``pip install -e ".[site]"``), warnings as errors.
The chapters are executed at build time in their fast mode (TINYVAE_FAST=1) and cached in
DIR/jupyter_cache by content, so a rebuild runs only the notebooks that changed. Nothing is fetched
from the network, at build time or when a page is viewed (MathJax is served from ``_static``).
The configuration is docs/conf.py. The repository's notebooks stay without outputs: the executed
copies live only under DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyvae.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, parser, unwritable

ROOT = Path(__file__).resolve().parents[1]
SITE_HINT = 'install the site extra: pip install -e ".[site]"'


def build_parser() -> argparse.ArgumentParser:
    p = parser("python -m tinyvae.site", "Build the course website (Sphinx, warnings as errors) into DIR/html.")
    p.add_argument("--out", default=str(ROOT / "_site"), metavar="DIR",
                   help="build folder (default: _site in the repository, git-ignored)")
    return p


def sphinx_arguments(out: Path) -> list[str]:
    """sphinx-build's arguments for a build into ``out``/html, its caches beside it."""
    return ["-W", "--keep-going", "-q", "-c", str(ROOT / "docs"), "-d", str(out / "doctrees"),
            "-D", f"nb_execution_cache_path={out / 'jupyter_cache'}", str(ROOT), str(out / "html")]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (ROOT / "docs" / "conf.py").is_file() or not (ROOT / "notebooks").is_dir():
        print(f"error: {ROOT} is not a tinyvae checkout (no docs/conf.py or notebooks/); "
              "build the site from a clone of the repository", file=sys.stderr)
        return EXIT_USAGE
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
        from sphinx.cmd.build import build_main
    except ImportError as err:
        print(f"error: {err.name} is not installed; {SITE_HINT}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out).resolve()
    problem = unwritable(out)
    if problem is not None:
        print(f"error: --out: {problem}; choose a folder you can write.", file=sys.stderr)
        return EXIT_USAGE
    status = build_main(sphinx_arguments(out))
    if status != 0:
        print("error: the site build failed (warnings count as errors): see the messages above", file=sys.stderr)
        return EXIT_FAILED
    print(f"site built: {out / 'html' / 'index.html'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
