"""The whole book: every chapter executes under papermill (tiny profile), then the HTML builds
with warnings as errors. Later chapters reuse the stages cached by earlier ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from bertdrift import book

pytestmark = pytest.mark.slow
CHAPTERS = [nb.name for nb in book.notebooks()]


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    if not os.environ.get("BERTDRIFT_DATA"):
        pytest.skip("BERTDRIFT_DATA is not set: the book needs the real data")
    build = Path(os.environ.get("BERTDRIFT_TEST_BUILD", tmp_path_factory.mktemp("book")))
    book.execute(build, profile="tiny")
    book.build_html(build)
    return build


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    assert len(CHAPTERS) >= 1
    for name in CHAPTERS:
        nb = nbformat.read(book.ROOT / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        assert any("parameters" in c.metadata.get("tags", []) for c in code), name
        assert "IN_COLAB" in code[0].source, f"{name}: first code cell must be the Colab cell"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_executes_without_errors(built, name):
    nb = nbformat.read(built / "src" / "notebooks" / name, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    assert any(o.get("output_type") in ("display_data", "execute_result")
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_book_html_is_built(built):
    html = built / "_build" / "html"
    pages = {p.stem for p in (html / "notebooks").glob("*.html")}
    assert {Path(n).stem for n in CHAPTERS} <= pages
    timings = json.loads((built / "timings.json").read_text())
    assert set(timings) >= {Path(n).stem for n in CHAPTERS}
    for page in (html / "notebooks").glob("*.html"):
        text = page.read_text()
        assert "Traceback (most recent call last)" not in text, page.name
        assert "<img" in text or "claims" in page.stem, f"{page.name} has no figure"


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


# In-page checks of the browser test (JavaScript run by Playwright on each page). Each returns a
# list of human-readable problems; empty means the page passes.
_FIGURE_SIZES_JS = """
() => {
  const out = [];
  for (const img of document.images) {
    if (!img.src.includes('/_images/') || !img.complete || img.naturalWidth === 0) continue;
    if (img.offsetParent === null) continue;  // folded (e.g. in a closed dropdown): not shown
    const shown = img.getBoundingClientRect().width;
    const parent = img.parentElement;
    const cs = getComputedStyle(parent);
    const room = parent.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const name = img.src.split('/').pop().slice(0, 16);
    if (shown < 0.8 * img.naturalWidth && shown < room - 2) {
      out.push(`figure ${name}… shown at ${Math.round(shown)} px of its natural ` +
               `${img.naturalWidth} px (${Math.round(100 * shown / img.naturalWidth)} %) ` +
               `although ${Math.round(room)} px are available: make it at most ~750 px wide ` +
               `(bertdrift.plots.new_figure) and do not set a width on it`);
    }
  }
  return out;
}
"""

_OVERFLOW_JS = """
() => {
  const out = [];
  const column = document.querySelector('article.bd-article') || document.querySelector('main')
                 || document.body;
  const col = column.getBoundingClientRect();
  const scrolls = (e) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(e).overflowX);
  const describe = (e) => {
    const text = (e.innerText || '').trim().split('\\n')[0].slice(0, 50);
    return `${e.tagName.toLowerCase()}${e.className ? '.' + String(e.className).split(' ')[0] : ''}` +
           ` "${text}"`;
  };
  const items = column.querySelectorAll('table, div.cell div.highlight, div.cell_output pre, ' +
                                        'div.highlight pre, div.output');
  for (const e of items) {
    if (e.offsetParent === null) continue;
    // The box that shows the element: itself if it scrolls, else its nearest scrolling ancestor.
    let box = e;
    while (box && box !== column && !scrolls(box)) box = box.parentElement;
    if (!box || box === column) box = e;
    const r = box.getBoundingClientRect();
    if (r.right > col.right + 1 || r.left < col.left - 1) {
      out.push(`${describe(e)} runs ${Math.round(r.right - col.right)} px past its column ` +
               `(${Math.round(r.width)} px wide, column ${Math.round(col.width)} px): wrap it in ` +
               `a scrolling box (book/_static/custom.css) or split it (bertdrift.tables.split_wide)`);
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    out.push(`the page scrolls sideways: ${page.scrollWidth} px wide at a ${window.innerWidth} px window`);
  }
  return out;
}
"""

_MATHS_JS = """
async () => {
  const maths = document.querySelectorAll('.math');
  if (maths.length === 0) return {maths: 0, rendered: 0, problems: []};
  if (!window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise) {
    const src = Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s));
    return {maths: maths.length, rendered: 0,
            problems: [`MathJax did not load with the network off (scripts: ${src.join(', ') || 'none'})`]};
  }
  await window.MathJax.startup.promise;
  const raw = Array.from(maths).filter(e => !e.querySelector('mjx-container'))
                   .map(e => e.textContent.trim().slice(0, 40));
  const problems = raw.length ? [`${raw.length} of ${maths.length} formulas left as raw TeX, e.g. ${JSON.stringify(raw.slice(0, 3))}`] : [];
  const prose = Array.from(document.querySelectorAll('article p, article li'))
                     .map(e => e.innerText).filter(t => t.includes('$$') || t.includes('\\\\('));
  if (prose.length) problems.push(`raw maths delimiters in the text: ${JSON.stringify(prose[0].slice(0, 80))}`);
  return {maths: maths.length, rendered: document.querySelectorAll('mjx-container').length, problems};
}
"""


def browser_problems(page, name: str, narrow: bool = False) -> list[str]:
    """Layout and maths problems of the page loaded in ``page`` (a Playwright page), each
    prefixed with ``name``. At the wide viewport: figures at a readable size, nothing wider than
    the column, maths rendered; at ``narrow`` (phone) width only the sideways-scroll checks."""
    problems = page.evaluate(_OVERFLOW_JS)
    if not narrow:
        problems += page.evaluate(_FIGURE_SIZES_JS)
        maths = page.evaluate(_MATHS_JS)
        problems += maths["problems"]
        if maths["maths"] and not maths["rendered"]:
            problems.append(f"{maths['maths']} formulas but no MathJax output (mjx-container)")
    return [f"{name}{' at phone width' if narrow else ''}: {p}" for p in problems]


def offline_context(browser, width: int):
    """A browser context with the network off: only file:// URLs load (as a reader offline)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        ("file:", "data:", "blob:")) else route.abort())
    context.set_offline(True)
    return context


def test_every_page_renders_in_a_real_browser(built):
    """Open every page in headless Chromium with the network off: images load, no error text;
    at 1280 px figures show at ≥ 80 % of their natural width (or the full column), no table or
    code cell runs past its column, maths renders (MathJax served by the book); at 400 px no
    page scrolls sideways. Screenshots saved."""
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: .ci/run installs Debian's `chromium`")
        pytest.skip("Chromium not installed (apt-get install chromium) — browser check skipped")
    from playwright.sync_api import sync_playwright

    html = built / "_build" / "html"
    shots = built / "screenshots"
    shots.mkdir(exist_ok=True)
    pages = [html / "intro.html", *sorted((html / "notebooks").glob("*.html"))]
    pages += [p for p in html.glob("*.html") if p.stem not in {"intro", "genindex", "search",
                                                                 "index"}]
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=args)
        page = offline_context(browser, 1280).new_page()
        phone = offline_context(browser, 400).new_page()
        for path in dict.fromkeys(pages):
            page.goto(path.as_uri(), wait_until="load")
            problems += browser_problems(page, path.name)
            phone.goto(path.as_uri(), wait_until="load")
            problems += browser_problems(phone, path.name, narrow=True)
            page.screenshot(path=str(shots / f"{path.stem}.png"), full_page=True)
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])"
            )
            broken = [src for src, ok in images if not ok and not src.startswith("http")]
            figures = [src for src, _ in images if "/_images/" in src]
            text = page.inner_text("body")
            if broken:
                problems.append(f"{path.name}: images failed to load: {broken}")
            for bad in ("Traceback (most recent call last)", "ERROR:", "Exception:",
                        "WARNING: "):
                if bad in text:
                    problems.append(f"{path.name}: page shows {bad!r}")
            if path.parent.name == "notebooks" and "claims" not in path.stem and not figures:
                problems.append(f"{path.name}: chapter has no figure")
        browser.close()
    assert not problems, "\n".join(problems)
    assert len(list(shots.glob("*.png"))) >= len(CHAPTERS)


OPTIONAL_CORPORA = ("ewt-srl", "spr2", "semeval2010-task8")
"""Corpora a Colab user or the publish workflow may not have (chapter 3 skips their probes)."""


def test_book_builds_without_the_optional_corpora(built, tmp_path, monkeypatch):
    """Chapter 3 and the claims page re-executed with a data folder that lacks the SRL, SPR2
    and SemEval files (offline, so SemEval's Hub copy cannot stand in): the book still builds,
    and both pages say which probes were skipped and how to add them. The other chapters'
    executed copies, the fine-tuned models and the features are reused from the full build."""
    import shutil

    from bertdrift.config import cache_dir

    data = Path(os.environ["BERTDRIFT_DATA"])
    partial = tmp_path / "data"
    partial.mkdir()
    for entry in data.iterdir():
        if entry.name not in OPTIONAL_CORPORA:
            (partial / entry.name).symlink_to(entry)  # linked, never copied
    shared, cache = cache_dir(), tmp_path / "cache"
    cache.mkdir()
    for entry in shared.iterdir():  # stages reused; result records copied so none is overwritten
        if entry.name == "results":
            shutil.copytree(entry, cache / "results", symlinks=True)
        else:
            (cache / entry.name).symlink_to(entry)
    monkeypatch.setenv("BERTDRIFT_DATA", str(partial))
    monkeypatch.setenv("BERTDRIFT_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    build = tmp_path / "build"
    (build / "src" / "notebooks").mkdir(parents=True)
    for nb in (built / "src" / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, build / "src" / "notebooks" / nb.name)
    book.execute(build, profile="tiny", only=["03_probing", "08_claims"])
    html = book.build_html(build)
    probing = (html / "notebooks" / "03_probing.html").read_text()
    assert "Skipped probes" in probing
    for name in ("srl", "spr2", "rel"):
        assert f">{name}</span>" in probing, name
    claims_page = (html / "notebooks" / "08_claims.html").read_text()
    assert "skipped" in claims_page.lower() and "srl" in claims_page
