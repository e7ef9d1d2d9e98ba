"""Sphinx configuration for the course website: README.md, docs/ and the notebook chapters.

The source folder is the repository root (so the Markdown links between README.md, docs/ and
notebooks/ work on the site as they do on GitHub); only the files in ``include_patterns`` are pages.
Build it with ``python -m tinyvae.site`` (see tinyvae/site.py), which passes ``-c docs``.

Nothing is fetched at build or page-view time: the theme is a pip package, MathJax comes from the
``sphinx-mathjax-offline`` package and is copied into ``_static/mathjax``, and the notebooks are
executed here by myst-nb, in the chapters' fast mode (TINYVAE_FAST=1), with a jupyter-cache so an
unchanged notebook is not run again.
"""

import io
import os
import shutil
import sys
from pathlib import Path

import docutils.core
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The kernels myst-nb starts inherit this environment: the chapters' fast mode, the repository
# on the path (an un-installed checkout works too), and matplotlib's inline backend (not Agg,
# which would draw no figures into the page).
os.environ["TINYVAE_FAST"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.pop("MPLBACKEND", None)

import tinyvae  # noqa: E402

project = "tinyvae"
author = "the tinyvae authors"
copyright = "tinyvae authors, MIT licence"
release = version = tinyvae.__version__

root_doc = "README"
include_patterns = ["README.md", "docs/*.md", "notebooks/*.ipynb", "tinyvae/data/datasets/README.md"]
exclude_patterns = ["docs/_build/**"]

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.githubpages",   # .nojekyll, so a static host serves _static/ as it is
    "sphinx-mathjax-offline",
]

# MyST: $…$ / $$…$$ maths as written for GitHub, heading anchors as GitHub slugs them.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 4
myst_dmath_double_inline = True
# A JSON example with "..." in it falls back to relaxed highlighting, which is what it should do.
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

# myst-nb: run each chapter at build time (fast mode), cached by notebook content.
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / "_site" / "jupyter_cache")   # python -m tinyvae.site --out DIR: DIR/jupyter_cache
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_kernel_rgx_aliases = {".*": "python3"}
nb_merge_streams = True

# autodoc: the public names of tinyvae/__init__.py, docstrings in NumPy or Google style.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = True

html_theme = "sphinx_book_theme"
html_title = "tinyvae — a VAE from scratch"
html_theme_options = {
    "use_download_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_copy_source = False

# The toctree lives here rather than in README.md, so that GitHub shows README.md unchanged. A new page in
# docs/ joins the guides by itself, after the ones listed.
GUIDES = ["index", "map", "derivations", "evaluation", "family", "benchmarks", "cli", "api", "reference",
          "instructor-guide"]
GUIDES += sorted(p.stem for p in (ROOT / "docs").glob("*.md") if p.stem not in GUIDES)
NAVIGATION = """

```{toctree}
:hidden:
:caption: Chapters
:glob:

notebooks/[0-9][0-9]_*
```

```{toctree}
:hidden:
:caption: Guides

""" + "".join(f"docs/{name}\n" for name in GUIDES) + """tinyvae/data/datasets/README
```
"""


def _plain_text_if_not_rst(app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """Most tinyvae docstrings are plain text laid out for ``help()`` (argument tables, maths in
    Unicode), not reStructuredText: show a docstring that docutils cannot read cleanly as it reads
    in the code, a literal block, instead of failing the build or mangling it."""
    text = "\n".join(lines)
    if not text.strip():
        return
    stream = io.StringIO()
    try:
        docutils.core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 5,
                                                                "warning_stream": stream})
    except Exception:   # Sphinx's own roles and directives need the build: that is reStructuredText
        return
    problems = [line for line in stream.getvalue().splitlines()
                if ("WARNING" in line or "ERROR" in line) and "Unknown interpreted text role" not in line]
    if problems:
        lines[:] = ["::", "", *("    " + line for line in text.splitlines()), ""]


def _add_navigation(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname == app.config.root_doc:
        source[0] += NAVIGATION


def _copy_landing_page(app: Sphinx, exception: Exception | None) -> None:
    """The landing page is README.html; index.html is a copy, so the site opens at its root."""
    landing = Path(app.outdir) / f"{app.config.root_doc}.html"
    if exception is None and app.builder.format == "html" and landing.is_file():
        shutil.copyfile(landing, Path(app.outdir) / "index.html")


def setup(app: Sphinx) -> None:
    app.connect("source-read", _add_navigation)
    app.connect("autodoc-process-docstring", _plain_text_if_not_rst, priority=900)
    app.connect("build-finished", _copy_landing_page)
