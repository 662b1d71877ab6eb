from __future__ import annotations

import pytest

from bertdrift import config
from bertdrift.config import get_profile
from bertdrift.errors import ConfigError, DataError
from bertdrift.finetune import report, run_key
from bertdrift.finetune.tasks import get_task


def test_precision_resolves_and_enters_the_run_key(monkeypatch) -> None:
    assert config.resolve_precision("fp32", "cpu") == "fp32"
    assert config.resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(config, "cpu_has_bf16", lambda: False)
    assert config.resolve_precision("auto", "cpu") == "fp32"  # no native bf16: float32
    monkeypatch.setattr(config, "cpu_has_bf16", lambda: True)
    assert config.resolve_precision("auto", "cpu") == "bf16"
    with pytest.raises(ConfigError):
        get_profile("tiny", precision="half")
    a = run_key("mnli", get_profile("tiny", precision="fp32"), freeze=0, seed=0,
                cache_frozen=True)
    b = run_key("mnli", get_profile("tiny", precision="bf16"), freeze=0, seed=0,
                cache_frozen=True)
    assert a != b


def test_tiny_trains_two_seeds_and_the_ablations_one() -> None:
    """Two seeds are the fewest that exercise every seed spread, seed ceiling and seed
    interval of the book (``tiny`` is the smoke run; the verdicts rest on bigger runs)."""
    p = get_profile("tiny")
    assert len(p.seeds) == 2 and len(p.probe_seeds) == 2 and p.ablation_seeds == (0,)
    assert len(get_profile("paper").seeds) == 3


def _mirror(tmp_path):
    (tmp_path / "mnli").mkdir(exist_ok=True)
    (tmp_path / "mnli" / "train_sample.jsonl").write_text("")
    return str(tmp_path)


def test_paper_never_substitutes_mnli_silently(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    p = get_profile("paper", data_dir=_mirror(tmp_path))
    with pytest.raises(DataError, match="allow_subsets"):
        get_task("mnli").load(p)
    allowed = get_profile("paper", data_dir=_mirror(tmp_path), allow_subsets=True)
    subs = report.substitutions(allowed)
    assert any("train_sample" in s for s in subs)
    assert "SUBSETS" in report.data_note(allowed)
    assert "allow_subsets" in allowed.describe()  # on every figure's stamp
    assert "allow_subsets" not in p.describe()
    # tiny asks for sizes, not full sets: nothing is substituted, sizes are still stated
    tiny = get_profile("tiny", data_dir=_mirror(tmp_path))
    assert report.substitutions(tiny) == []
    assert f"{tiny.mnli.train_size:,} pairs" in report.data_note(tiny)
