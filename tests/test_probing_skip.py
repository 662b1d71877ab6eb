"""Chapter 3 without the SRL, SPR2 and SemEval files: those probes are skipped with a note (in
the chapter and on the claims page) instead of stopping the book; SemEval comes from the Hub
when online."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _family_fixtures import build_family
from datasets import ClassLabel, Dataset, Features, Value

from bertdrift import claims, get_profile
from bertdrift.errors import MissingDataError
from bertdrift.probing import run as probing_run


@pytest.fixture
def partial_data(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder holding UD EWT only (linked, never copied), offline."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ud-ewt").symlink_to(data_dir / "ud-ewt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BERTDRIFT_DATA", raising=False)
    return folder


def test_missing_corpora_are_skipped_with_a_note(partial_data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    P = get_profile("tiny", data_dir=str(partial_data), cache_dir=str(tmp_path / "cache"),
                    device="cpu", probe_train_size=12, probe_eval_size=6, probe_eval_targets=None, probe_epochs=1,
                    probe_seeds=(0,), probe_hidden=8, structural_rank=4)
    model = build_family("bert", tmp_path / "bert")
    res = probing_run.run_probing(P, models={"pretrained": str(model)},
                                  tasks=("pos", "srl", "spr2", "rel"), structural=("depth",),
                                  control=(), progress=False)
    assert set(res.skipped) == {"srl", "spr2", "rel"}
    assert all("missing" in why for why in res.skipped.values())
    assert set(res.edge["task"]) == {"pos"}
    assert not res.structural.empty
    note = probing_run.skipped_note(res.skipped)
    for name in ("srl", "spr2", "rel", "BERTDRIFT_DATA", "SemEvalWorkshop/sem_eval_2010_task_8"):
        assert name in note
    assert probing_run.skipped_note({}) == ""
    # the claims page names the skipped tasks beside the chapter's claim
    claims.record_skipped(P, "03_probing", res.skipped)  # as chapter 3 does
    claims.record(P, "03_probing", {"change": {"mnli": {"pos": 0.5}}})
    row = claims.claims_table(P).set_index("chapter").loc["03_probing"]
    assert "skipped rel, spr2, srl" in row["effect"]
    # without a skipped dict, a missing corpus is still an error that says what to do
    with pytest.raises(MissingDataError, match="BERTDRIFT_DATA"):
        probing_run.load_edge_splits(P, ("srl",))


def test_semeval_falls_back_to_the_hub_copy(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from bertdrift.data.semeval import load_semeval

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTDRIFT_OFFLINE", raising=False)
    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path / "cache"))
    names = ["Other", "Cause-Effect(e1,e2)"]
    fake = Dataset.from_dict(
        {"sentence": ["The <e1>fire</e1> caused the <e2>smoke</e2>.",
                      "A <e1>cat</e1> sat on the <e2>mat</e2>."], "relation": [1, 0]},
        features=Features({"sentence": Value("string"), "relation": ClassLabel(names=names)}))
    asked = []

    def fake_load(name: str, split: str):
        asked.append((name, split))
        return fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    ds = load_semeval("test", data_dir=tmp_path / "empty")
    assert asked == [("SemEvalWorkshop/sem_eval_2010_task_8", "test")]
    assert ds["label"] == ["Cause-Effect(e1,e2)", "Other"]
    assert ds[0]["tokens"][ds[0]["e1"][0]] == "fire" and ds[0]["id"] == "8001"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: no Hub, the usual error
    with pytest.raises(MissingDataError):
        load_semeval("train", data_dir=tmp_path / "empty")
