"""The course website, checked as a reader sees it (marked ``site``; needs the site extra).

One build per session (``python -m tinyvae.site --out TMP``: Sphinx with warnings as errors, the
chapters executed by myst-nb in fast mode) into a temporary folder, then:

- every relative ``href``/``src`` in the built pages points at a file that was built, and every
  ``#anchor`` at an id on that page (offline: nothing is fetched);
- headless Chromium (Debian's ``chromium``, driven over ``--remote-debugging-pipe`` with the
  DevTools protocol, no extra package) opens each chapter and the derivations: at least one image
  that loaded (width > 0) on every chapter, MathJax's elements wherever the page has maths and no
  raw ``$$`` or ``\\frac`` in the text a reader sees, no request leaving the built folder, and the
  navigation reaching every chapter; a screenshot of one chapter is saved in the build folder.

The browser part is skipped, saying why, only where no Chromium can be found.
"""

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOT_CHAPTER = "07_training_a_vae"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SITE_HINT = 'install the site extra: pip install -e ".[site]"'

pytestmark = [pytest.mark.site, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site: the build folder (html/ inside it)."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        try:
            __import__(module)
        except ImportError:
            pytest.fail(f"{module} is not installed; {SITE_HINT}")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tinyvae.site", "--out", str(out)], cwd=out, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    print(f"site built in {time.perf_counter() - started:.0f} s")
    return out


# --- links, offline ------------------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value and not (tag == "link" and ("rel", "canonical") in attrs):
                self.targets.append(value)
            elif name in ("id", "name") and value:
                self.ids.add(value)


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def broken_links(html: Path) -> list[str]:
    """One line for each relative link in the built site that does not resolve (file or #anchor)."""
    pages = {p: _parse(p) for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts}
    problems = []
    for page, links in pages.items():
        for target in links.targets:
            parts = urlsplit(target)
            if parts.scheme in ("http", "https", "mailto", "data", "javascript") or target.startswith("//"):
                continue
            resolved = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
            if not resolved.is_relative_to(html.resolve()):
                problems.append(f"{page.relative_to(html)}: {target} leaves the site")
            elif not resolved.exists():
                problems.append(f"{page.relative_to(html)}: {target} does not exist")
            elif parts.fragment and resolved.suffix == ".html" and resolved in pages and \
                    unquote(parts.fragment) not in pages[resolved].ids:
                problems.append(f"{page.relative_to(html)}: {target} has no #{parts.fragment}")
    return problems


def test_every_page_is_built_and_every_internal_link_resolves(site):
    html = site / "html"
    expected = ["index.html", "README.html", *(f"notebooks/{c}.html" for c in CHAPTERS),
                *(f"docs/{p.stem}.html" for p in (ROOT / "docs").glob("*.md"))]
    assert [p for p in expected if not (html / p).is_file()] == []
    assert "autoclass" not in (html / "docs" / "reference.html").read_text(encoding="utf-8")
    assert 'id="tinyvae.VAE"' in (html / "docs" / "reference.html").read_text(encoding="utf-8")
    assert broken_links(html) == []


def test_the_link_check_can_fail(tmp_path):
    """A negative twin: a missing page, a missing anchor and a link out of the site are reported."""
    (tmp_path / "a.html").write_text('<p id="here"><a href="a.html#here">ok</a> <a href="https://x.org/">web</a>'
                                     '<a href="b.html">no</a><a href="a.html#gone">no</a><a href="../x.html">no</a>')
    problems = broken_links(tmp_path)
    assert len(problems) == 3, problems


def test_the_notebooks_in_the_repository_stay_without_outputs(site):
    """The build executes copies: the stored chapters are untouched."""
    for name in CHAPTERS:
        cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), name


# --- the browser -------------------------------------------------------------------------------

class Chromium:
    """Headless Chromium driven over its DevTools pipe: JSON messages, each ended by a NUL byte,
    written to the browser's fd 3 and read from its fd 4."""

    def __init__(self, executable: str, profile: Path):
        to_browser, from_browser = os.pipe(), os.pipe()
        # The browser's ends, moved above fd 100 so that putting them on fds 3 and 4 in the child
        # cannot overwrite one with the other.
        child_read = fcntl.fcntl(to_browser[0], fcntl.F_DUPFD, 100)
        child_write = fcntl.fcntl(from_browser[1], fcntl.F_DUPFD, 100)

        def wire():
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        args = [executable, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
                f"--user-data-dir={profile}", "about:blank"]
        # close_fds=False: the fds made in wire() must survive into the browser (Python's own are
        # not inheritable, so nothing else leaks).
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=wire, close_fds=False)
        for fd in (to_browser[0], from_browser[1], child_read, child_write):
            os.close(fd)
        self.writer, self.reader = os.fdopen(to_browser[1], "wb", buffering=0), os.fdopen(from_browser[0], "rb")
        self.next_id, self.events, self.buffer = 0, [], b""

    def _receive(self) -> dict:
        while b"\0" not in self.buffer:
            chunk = self.reader.read1(1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.writer.write(json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, session: str, timeout: float = 60) -> dict:
        """The first event called ``event`` from ``session`` (kept or still to come)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.events:
                if message.get("method") == event and message.get("sessionId") == session:
                    return message
            self.events.append(self._receive())
        raise TimeoutError(f"no {event} in {timeout} s")

    def close(self):
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.writer.close()
        self.reader.close()


# What the page looks like once MathJax has finished (or in 20 s): the article's images, maths and text.
INSPECT = r"""
(async () => {
  for (let t = 0; t < 200; t++) {
    if (document.readyState === "complete" && (!window.MathJax || (MathJax.startup && MathJax.startup.promise))) break;
    await new Promise(r => setTimeout(r, 100));
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const article = document.querySelector("article") || document.body;
  const visible = article.cloneNode(true);
  visible.querySelectorAll("pre, code, script, style, mjx-container, .highlight").forEach(e => e.remove());
  const nav = [...document.querySelectorAll(".bd-sidebar-primary a[href], .prev-next-area a[href]")];
  return JSON.stringify({
    images: [...article.querySelectorAll("img")].map(i => ({src: i.currentSrc, complete: i.complete,
                                                            width: i.naturalWidth, shown: i.width})),
    mathNodes: article.querySelectorAll(".math").length,
    mathjax: article.querySelectorAll("mjx-container").length,
    text: visible.textContent,
    links: nav.map(a => a.href),
  });
})()
"""


def _browser_or_skip() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH (Debian: apt-get install -y chromium; .ci/run installs it where apt-get "
                "works): the browser checks of the site did not run")


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    """A headless Chromium and one page (tab) in it: (browser, session)."""
    browser = Chromium(_browser_or_skip(), tmp_path_factory.mktemp("chromium-profile"))
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.send("Network.enable", session)
        browser.send("Page.enable", session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=1280, height=1000, deviceScaleFactor=1,
                     mobile=False)
        yield browser, session
    finally:
        browser.close()


def look(tab, path: Path) -> dict:
    """Open ``path`` and return what INSPECT sees, with the URLs of the requests the page made."""
    browser, session = tab
    browser.events.clear()
    browser.send("Page.navigate", session, url=path.resolve().as_uri())
    browser.wait_for("Page.loadEventFired", session)
    result = browser.send("Runtime.evaluate", session, expression=INSPECT, awaitPromise=True,
                          returnByValue=True, timeout=30000)
    state = json.loads(result["result"]["value"])
    state["requests"] = [e["params"]["request"]["url"] for e in browser.events
                         if e.get("method") == "Network.requestWillBeSent"]
    return state


def a_figure_loaded(state: dict) -> bool:
    return any(i["complete"] and i["width"] > 0 and i["shown"] > 0 for i in state["images"])


def maths_typeset(state: dict) -> bool:
    return state["mathNodes"] == 0 or state["mathjax"] >= state["mathNodes"]


def raw_tex(state: dict) -> list[str]:
    return [m.group(0) for m in re.finditer(r".{0,40}(\$\$|\\frac).{0,40}", state["text"])]


def requests_outside(state: dict) -> list[str]:
    return [u for u in state["requests"] if not u.startswith(("file:", "data:", "about:"))]


@pytest.fixture(scope="module")
def pages(site, tab):
    """Each chapter, the derivations and the landing page as Chromium shows them."""
    html = site / "html"
    seen = {}
    for page in ["index", "docs/derivations", *(f"notebooks/{c}" for c in CHAPTERS)]:
        seen[page] = look(tab, html / f"{page}.html")
        if page.endswith(SCREENSHOT_CHAPTER):
            browser, session = tab
            shot = browser.send("Page.captureScreenshot", session, format="png")["data"]
            path = site / f"screenshot-{SCREENSHOT_CHAPTER}.png"
            path.write_bytes(base64.b64decode(shot))
            print(f"screenshot: {path}")
    return seen


def test_the_browser_checks_can_fail(tab, tmp_path):
    """A negative twin: a broken image, untypeset TeX and a request to another host are each caught."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><article><img src="missing.png" alt="x"><img src="https://example.invalid/a.png">'
                    '<p><span class="math">$$\\frac{a}{b}$$</span></p></article></body></html>')
    state = look(tab, page)
    assert not a_figure_loaded(state) and not maths_typeset(state)
    assert raw_tex(state) and set(requests_outside(state)) == {"https://example.invalid/a.png"}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_shows_a_figure_that_loaded(pages, chapter):
    state = pages[f"notebooks/{chapter}"]
    assert a_figure_loaded(state), state["images"]


@pytest.mark.parametrize("page", ["docs/derivations", *(f"notebooks/{c}" for c in CHAPTERS)])
def test_the_maths_is_typeset_and_no_raw_tex_is_left(pages, page):
    state = pages[page]
    assert maths_typeset(state), (state["mathNodes"], state["mathjax"])
    assert raw_tex(state) == []


def test_the_derivations_have_typeset_maths(pages):
    assert pages["docs/derivations"]["mathjax"] > 50


@pytest.mark.parametrize("page", ["index", "docs/derivations", *(f"notebooks/{c}" for c in CHAPTERS)])
def test_nothing_is_fetched_from_outside_the_built_site(pages, page):
    assert requests_outside(pages[page]) == []


def test_the_navigation_reaches_every_chapter(pages, site):
    html = (site / "html").resolve()
    reached = {unquote(urlsplit(u).path) for u in pages["index"]["links"]}
    missing = [c for c in CHAPTERS if str(html / "notebooks" / f"{c}.html") not in reached]
    assert missing == []
    # and each chapter's "next" leads to the next one
    for previous, chapter in zip(CHAPTERS[:-1], CHAPTERS[1:], strict=True):
        links = {unquote(urlsplit(u).path) for u in pages[f"notebooks/{previous}"]["links"]}
        assert str(html / "notebooks" / f"{chapter}.html") in links, (previous, chapter)


def test_a_chapter_screenshot_is_saved(pages, site):
    shot = site / f"screenshot-{SCREENSHOT_CHAPTER}.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_the_build_command_refuses_bad_input_in_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    for args in (["--bogus"], ["--out", str(a_file / "site")]):
        result = subprocess.run([sys.executable, "-m", "tinyvae.site", *args], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, \
            result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
