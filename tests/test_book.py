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


def test_every_page_renders_in_a_real_browser(built):
    """Open every page in headless Chromium: images load, no error text, screenshots saved."""
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
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for path in dict.fromkeys(pages):
            page.goto(path.as_uri(), wait_until="load")
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
