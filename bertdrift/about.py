"""What this package is and where it lives: its version and repository, from one place.

``pyproject.toml`` holds both (``[project] version`` and ``[project.urls] Repository``). In a
checkout they are read from it; in an installed wheel, from the package's metadata (built from
the same file). The chapters' Colab cells (``colab_cell``), the book's launch buttons and footer
(``book.stage``) and ``python -m bertdrift info`` take them from here; ``scripts/stamp.py``
writes them into the committed notebooks and ``_config.yml``, and a test fails when one of them
is out of step with ``pyproject.toml``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

NAME = "bertdrift"
ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def in_checkout(root: Path = ROOT) -> bool:
    """True when the package runs from a clone of the repository (the book's notebooks and
    ``_config.yml`` beside it), False when it is an installed wheel."""
    return (root / "pyproject.toml").is_file() and (root / "_config.yml").is_file() and (
        root / "notebooks").is_dir()


def _from_pyproject(text: str) -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the two fields by pattern
        version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
        repo = re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M)
        return {"version": version.group(1) if version else "",
                "repository": repo.group(1) if repo else ""}
    project = tomllib.loads(text)["project"]
    return {"version": project["version"], "repository": project["urls"]["Repository"]}


@cache
def _about() -> dict[str, str]:
    if PYPROJECT.is_file():
        return _from_pyproject(PYPROJECT.read_text())
    from importlib import metadata

    meta = metadata.metadata(NAME)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    return {"version": meta["Version"], "repository": urls.get("Repository", "")}


def version() -> str:
    """The package's version (``pyproject.toml``)."""
    return _about()["version"]


def repository() -> str:
    """The repository's URL (``pyproject.toml``'s ``[project.urls] Repository``)."""
    return _about()["repository"].rstrip("/")


def release_tag(ver: str | None = None) -> str:
    """The git tag of a release: ``v`` and the version (the release workflow runs on it)."""
    return f"v{ver or version()}"


def install_requirement(ver: str | None = None) -> str:
    """What a chapter's Colab cell installs: this version from PyPI."""
    return f"{NAME}=={ver or version()}"


def colab_cell(ver: str | None = None) -> str:
    """The first code cell of every chapter: on Colab only, install the package version the
    book was built from (Colab's own torch is kept)."""
    return (
        "import sys\n"
        "\n"
        'IN_COLAB = "google.colab" in sys.modules\n'
        "if IN_COLAB:  # on Colab only: the book's own version of bertdrift (Colab's torch "
        "stays)\n"
        "    import subprocess\n"
        "\n"
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", '
        f'"{install_requirement(ver)}"],\n'
        "                   check=True)"
    )


def outside_checkout_message() -> str:
    """What ``python -m bertdrift book`` says when run from an installed wheel."""
    return (f"`bertdrift book` needs the repository's notebooks and _config.yml, which the "
            f"installed package does not carry: git clone {repository()} && cd "
            f"{repository().rsplit('/', 1)[-1]} && make book (the other commands, info and "
            "finetune, work from the installed package)")
