"""Write the version and repository of ``pyproject.toml`` (``bertdrift.about``) into the files
that must carry them literally: every chapter's Colab cell (Colab runs the committed notebook)
and ``_config.yml``'s repository URL (the launch and repository buttons). Run it after changing
either in ``pyproject.toml``; ``tests/test_project.py`` fails until then. Usage::

    python scripts/stamp.py          # rewrite what is out of step
    python scripts/stamp.py --check  # exit 1 and name what is out of step
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bertdrift import about  # noqa: E402
from bertdrift.book import notebooks  # noqa: E402
from bertdrift.io import atomic_path  # noqa: E402


def out_of_step(root: Path = ROOT, write: bool = False) -> list[str]:
    """The files whose version or repository differ from ``pyproject.toml``'s (rewritten when
    ``write``)."""
    import nbformat

    stale = []
    for path in notebooks(root):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        if cell.source != about.colab_cell():
            stale.append(str(path.relative_to(root)))
            if write:
                cell.source = about.colab_cell()
                with atomic_path(path) as tmp:
                    nbformat.write(nb, tmp)
    config = root / "_config.yml"
    text = config.read_text()
    fixed = re.sub(r"(?m)^(repository:\n  url: ).*$", rf"\g<1>{about.repository()}", text)
    if fixed != text:
        stale.append("_config.yml")
        if write:
            with atomic_path(config) as tmp:
                tmp.write_text(fixed)
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is stale")
    args = parser.parse_args()
    stale = out_of_step(write=not args.check)
    verb = "out of step with pyproject.toml" if args.check else "stamped"
    for name in stale:
        print(f"{name}: {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
