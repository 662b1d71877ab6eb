"""Execute the chapters with papermill and render the book with Jupyter Book 1.

The committed notebooks carry no outputs. ``execute`` runs them in order (they share one cache,
so later chapters reuse earlier stages) into ``<build>/src/notebooks``; ``build`` copies the
book pages beside them and runs ``jupyter-book build`` with warnings as errors (``-W -n``) and
execution off, since papermill has already executed everything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bertdrift.errors import BertdriftError
from bertdrift.io import read_json, write_json

ROOT = Path(__file__).resolve().parent.parent


def notebooks(root: Path = ROOT) -> list[Path]:
    """The chapters, in reading order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def execute(
    build: Path,
    profile: str = "auto",
    overrides: dict | None = None,
    only: list[str] | None = None,
    root: Path = ROOT,
) -> dict[str, float]:
    """Run every chapter (or those whose name contains one of ``only``) with papermill.

    Returns the seconds each chapter took; also written to ``<build>/timings.json``.
    """
    import papermill as pm

    from bertdrift.config import absolutize_env, absolutize_overrides

    absolutize_env()  # kernels run in notebooks/: a relative BERTDRIFT_DATA would move
    overrides = absolutize_overrides(overrides)  # and so would a relative cache_dir=
    chapters = [nb for nb in notebooks(root)
                if not only or any(o in nb.stem for o in only)]
    if not chapters:
        raise BertdriftError(f"no chapter matches --only {' '.join(only or [])}; the chapters "
                             f"are {', '.join(nb.stem for nb in notebooks(root))}")
    out_dir = build / "src" / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    for nb in chapters:
        start = time.perf_counter()
        print(f"[bertdrift] executing {nb.name} (profile={profile})", flush=True)
        try:
            pm.execute_notebook(
                str(nb),
                str(out_dir / nb.name),
                parameters={"profile": profile, "overrides": overrides or {}},
                cwd=str(nb.parent),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
            )
        except pm.PapermillExecutionError as exc:
            raise BertdriftError(
                f"{nb.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; the "
                f"executed copy with the traceback is {out_dir / nb.name}"
            ) from exc
        _hide_injected_parameters(out_dir / nb.name)
        timings[nb.stem] = round(time.perf_counter() - start, 1)
        print(f"[bertdrift] {nb.name}: {timings[nb.stem]:.0f} s", flush=True)
    path = build / "timings.json"
    if only and path.exists():  # keep the other chapters' times from earlier runs
        chapters = {nb.stem for nb in notebooks(root)}
        earlier = {k: v for k, v in read_json(path).items() if k in chapters}
        timings = {**earlier, **timings}
    write_json(path, timings)
    return timings


def _hide_injected_parameters(path: Path) -> None:
    """Keep papermill's injected-parameters cell out of the rendered page."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def unexecuted(build: Path, root: Path = ROOT) -> list[str]:
    """Chapters without an executed copy in ``build``."""
    return [nb.name for nb in notebooks(root)
            if not (build / "src" / "notebooks" / nb.name).exists()]


def stage(build: Path, root: Path = ROOT) -> Path:
    """Copy the book's pages and configuration beside the executed notebooks."""
    src = build / "src"
    src.mkdir(parents=True, exist_ok=True)
    write_config(root / "_config.yml", src / "_config.yml")
    for item in (root / "book").iterdir():
        target = src / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy(item, target)
    missing = unexecuted(build, root)
    if missing:
        raise BertdriftError(
            f"not executed yet: {', '.join(missing)}; run `python -m bertdrift book` (which "
            "executes them first) or bertdrift.book.execute(build)"
        )
    stage_mathjax(src / "_mathjax" / "mathjax", root)
    return src


def write_config(source: Path, target: Path) -> dict[str, Any]:
    """The book's configuration with what ``bertdrift.about`` knows: the repository URL, the
    launch buttons opening the chapters at this version's release tag (whose Colab cells
    install this version), and the version in every page's footer."""
    import yaml

    from bertdrift import about

    config = yaml.safe_load(source.read_text())
    config.setdefault("repository", {}).update(url=about.repository(),
                                               branch=about.release_tag())
    config.setdefault("html", {})["extra_footer"] = (
        f'<p>bertdrift {about.version()} (<a href="{about.repository()}">source</a>)</p>')
    target.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return config


MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui",
                 "a11y")
"""What of MathJax 3's ``es5/`` folder the book serves (≈ 3 MB): the TeX → CommonHTML bundle,
its fonts, and what it loads on demand (TeX extensions, menu, accessibility)."""


def mathjax_source(root: Path = ROOT) -> Path:
    """MathJax 3's ``es5/`` folder: ``$BERTDRIFT_MATHJAX``, else ``<venv>/mathjax/...`` as
    installed by ``scripts/env.sh`` (``npm install --prefix <venv>/mathjax mathjax@3``), else a
    ``node_modules/mathjax`` in the repository."""
    import os

    candidates = []
    if os.environ.get("BERTDRIFT_MATHJAX"):
        env = Path(os.environ["BERTDRIFT_MATHJAX"]).expanduser()
        candidates += [env, env / "es5"]
    for base in (Path(sys.prefix) / "mathjax", root / ".venv" / "mathjax", root):
        candidates.append(base / "node_modules" / "mathjax" / "es5")
    for c in candidates:
        if (c / "tex-chtml.js").is_file():
            return c
    raise BertdriftError(
        "MathJax 3 is not installed, and the book serves it itself so that maths renders "
        "offline. Run `bash scripts/env.sh book` (needs npm: `apt-get install npm`), or "
        f"`npm install --prefix {Path(sys.prefix) / 'mathjax'} mathjax@3`, or set "
        "BERTDRIFT_MATHJAX to a folder holding MathJax 3's tex-chtml.js. Looked in: "
        + ", ".join(str(c) for c in candidates)
    )


def stage_mathjax(target: Path, root: Path = ROOT) -> Path:
    """Copy MathJax (``MATHJAX_PARTS`` of ``mathjax_source``) to ``target``: the staged book's
    ``_mathjax/mathjax``, which ``_config.yml``'s ``html_extra_path`` copies to
    ``<html>/mathjax`` and its ``mathjax_path`` points at."""
    source = mathjax_source(root)
    for part in MATHJAX_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        elif src.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target / part)
    return target


def build_html(build: Path, root: Path = ROOT) -> Path:
    """Render the staged book to ``<build>/html`` with warnings as errors."""
    src = stage(build, root)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which(
        "jupyter-book"
    )
    if jb is None:
        raise BertdriftError("jupyter-book is not installed; `pip install 'bertdrift[book]'`")
    cmd = [jb, "build", str(src), "--path-output", str(build), "-W", "-n", "--keep-going"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    log = build / "jupyter-book.log"
    log.write_text(result.stdout + "\n" + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BertdriftError(f"jupyter-book build failed (full log: {log}):\n{tail}")
    html = build / "_build" / "html"
    return html


def run(build: Path, profile: str = "auto", overrides: dict | None = None) -> Path:
    """Execute every chapter, then build the HTML. Returns the HTML folder."""
    start = time.perf_counter()
    timings = execute(build, profile, overrides)
    t0 = time.perf_counter()
    html = build_html(build)
    timings["jupyter-book build"] = round(time.perf_counter() - t0, 1)
    timings["total"] = round(time.perf_counter() - start, 1)
    write_json(build / "timings.json", timings)
    for name, seconds in timings.items():
        print(f"[bertdrift] {name:<28} {seconds:7.1f} s")
    print(f"[bertdrift] book: {html / 'index.html'}")
    return html


def glue_numbers(numbers: dict[str, Any]) -> dict[str, Any]:
    """Glue every ``name: value`` (computed by a tested package function) into the page with
    myst-nb, without displaying it; the prose quotes them as ``{glue:}`name```. Returns
    ``numbers``, so a chapter's last cell can also show them."""
    from myst_nb import glue

    for name, value in numbers.items():
        glue(name, value, display=False)
    return numbers


def environment_table(profile: Any):
    """Versions, device, threads, model and paths of this run, as a one-column table."""
    import platform

    import pandas as pd
    import torch
    import transformers

    import bertdrift
    from bertdrift.config import model_label, resolve_device

    device = resolve_device(profile.device)
    env = {
        "python": platform.python_version(),
        "bertdrift": bertdrift.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""),
        "CPU threads": torch.get_num_threads(),
        "profile": profile.name,
        "model": model_label(profile.model),
        "data_path": str(profile.data_path),
        "cache_path": str(profile.cache_path),
    }
    return pd.Series(env, name="value").to_frame()
