"""Version and repository in one place (``pyproject.toml``, read by ``bertdrift.about``), the
files stamped from it, and a wheel that stands on its own outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import bertdrift
from bertdrift import about, book

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def test_version_and_repository_come_from_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert about.version() == project["version"] == bertdrift.__version__
    assert about.repository() == project["urls"]["Repository"].rstrip("/")
    assert about.release_tag() == f"v{project['version']}"
    assert about._from_pyproject('[project]\nversion = "9.8.7"\n[project.urls]\n'
                                 'Repository = "https://x.org/a/b"\n') == {
        "version": "9.8.7", "repository": "https://x.org/a/b"}


def test_notebooks_and_config_are_stamped_from_pyproject(tmp_path):
    """Every chapter's Colab cell installs this version; ``_config.yml`` names this repository
    (``python scripts/stamp.py`` rewrites them after a version bump)."""
    import shutil

    import nbformat
    from stamp import out_of_step

    assert out_of_step() == [], "run: python scripts/stamp.py"
    for nb in book.notebooks():
        code = [c for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
        assert about.install_requirement() in code[0].source
    # a bumped version makes them stale, and stamping brings them back in step
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "notebooks", copy / "notebooks")
    shutil.copy(ROOT / "_config.yml", copy / "_config.yml")
    (copy / "_config.yml").write_text((copy / "_config.yml").read_text().replace(
        about.repository(), "https://example.org/old/place"))
    assert out_of_step(copy) == ["_config.yml"]
    assert out_of_step(copy, write=True) == ["_config.yml"] and out_of_step(copy) == []


def test_staged_config_carries_version_tag_and_footer(tmp_path):
    config = book.write_config(ROOT / "_config.yml", tmp_path / "_config.yml")
    assert config["repository"]["url"] == about.repository()
    assert config["repository"]["branch"] == about.release_tag()
    assert about.version() in config["html"]["extra_footer"]
    assert config["launch_buttons"]["colab_url"]  # the committed settings are kept


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bertdrift", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_wheel_works_outside_the_repository(tmp_path):
    """``pip wheel`` of this checkout, installed (without its dependencies, which this
    environment has) into a folder outside the repository: ``info`` and ``finetune`` work from
    it offline, ``book`` says in one line that it needs the repository."""
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(wheels)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("bertdrift-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                                "--target", str(site), str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "BERTDRIFT_CACHE": str(tmp_path / "cache")}
    info = _run(["info", "--profile", "tiny"], work, env)
    assert info.returncode == 0, info.stderr[-2000:]
    shown = json.loads(info.stdout)
    assert shown["bertdrift"] == about.version() and shown["repository"] == about.repository()
    where = subprocess.run([sys.executable, "-c", "import bertdrift; print(bertdrift.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site))  # the wheel's copy, not the checkout
    refused = _run(["book", "--profile", "tiny"], work, env)
    assert refused.returncode == 2
    assert "needs the repository" in refused.stderr and "git clone" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    if not os.environ.get("BERTDRIFT_DATA"):
        pytest.skip("BERTDRIFT_DATA is not set: the bounded fine-tuning run needs the data")
    ft = _run(["finetune", "--task", "mnli", "--profile", "tiny", "--set", "max_steps=2",
               "--set", "mnli_train_size=16", "--set", "mnli_eval_size=8",
               "--set", "snapshot_fractions=[]", "--set", "device=cpu"], work, env)
    assert ft.returncode == 0, ft.stderr[-2000:]
    assert "dev_matched_accuracy" in json.loads(ft.stdout)["metrics"]
