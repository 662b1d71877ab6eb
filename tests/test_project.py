"""Project-level checks: environment.yml mirrors pyproject, profiles validate, models load."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
import yaml

from bertdrift import models
from bertdrift.config import PROFILES, TINY, get_profile
from bertdrift.errors import ConfigError, ModelError

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == wanted
    assert all(">=" in dep for dep in wanted), "lower bounds only"


def test_profiles_and_overrides():
    assert set(PROFILES) == {"tiny", "paper"}
    p = get_profile("tiny", mnli_epochs=1, seeds=[0, 1], model="some/model")
    assert p.mnli.epochs == 1 and p.seeds == (0, 1) and p.model == "some/model"
    assert p.squad == TINY.squad
    assert get_profile("paper").model == "bert-base-uncased"
    assert get_profile("auto").name in PROFILES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epoch": 3}, "unknown profile setting 'epoch'.*mnli_epochs"),
        ({"mnli_epochs": "three"}, "mnli_epochs must be an integer"),
        ({"mnli_epochs": 0}, "mnli recipe is invalid"),
        ({"pooling": "max"}, "pooling='max' is not valid"),
        ({"seeds": []}, "at least one seed"),
        ({"ablation_eval_size": 0}, "ablation_eval_size=0 must be >= 1"),
        ({"ablation_train_fraction": 1.5}, r"ablation_train_fraction must be in \(0, 1\]"),
    ],
)
def test_bad_overrides_raise_one_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        get_profile("tiny", **kwargs)


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid profiles: auto, tiny, paper"):
        get_profile("huge")


def test_packaged_model_loads_with_all_layers():
    enc = models.load_encoder()
    tok = models.load_tokenizer()
    out = enc(**tok(["a short test"], return_tensors="pt"), output_hidden_states=True)
    assert len(out.hidden_states) == enc.config.num_hidden_layers + 1 == 7
    assert out.hidden_states[-1].shape[-1] == 384


def test_local_directory_and_missing_model(tmp_path, monkeypatch):
    enc = models.tiny_bert()
    enc.save_pretrained(tmp_path / "m")
    assert models.load_encoder(tmp_path / "m").config.hidden_size == 32
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE.*model='minilm'"):
        models.load_encoder("no-such-org/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a Hugging Face checkpoint"):
        models.load_encoder(tmp_path / "empty")


def test_freeze_and_copy_layers():
    a, b = models.tiny_bert(num_layers=3, seed=0), models.tiny_bert(num_layers=3, seed=1)
    models.freeze_bottom(a, 2)
    layers = models.encoder_layers(a)
    assert not any(p.requires_grad for p in layers[1].parameters())
    assert all(p.requires_grad for p in layers[2].parameters())
    a.train()
    assert not layers[0].training and layers[2].training
    with pytest.raises(ModelError, match="0..3"):
        models.freeze_bottom(a, 4)
    before = models.weights_fingerprint(b)
    models.copy_layers(a, b, [0])
    assert models.weights_fingerprint(b) != before
    for pa, pb in zip(layers[0].parameters(), models.encoder_layers(b)[0].parameters(),
                      strict=True):
        assert (pa == pb).all()


def test_weights_fingerprint_is_remembered_until_a_weight_changes():
    import torch

    m = models.tiny_bert(num_layers=2, seed=0)
    first = models.weights_fingerprint(m)
    assert models.weights_fingerprint(m) == first  # remembered: same weights
    p = next(m.parameters())
    with torch.no_grad():
        p.add_(1.0)  # an in-place step, as an optimizer takes
    stepped = models.weights_fingerprint(m)
    assert stepped != first
    with torch.no_grad():
        p.sub_(1.0)
    restored = models.weights_fingerprint(m)
    assert restored != stepped
    models._FINGERPRINTS.clear()  # the remembered value equals a fresh hash
    assert models.weights_fingerprint(m) == restored
    m.load_state_dict(models.tiny_bert(num_layers=2, seed=1).state_dict())
    assert models.weights_fingerprint(m) == models.weights_fingerprint(
        models.tiny_bert(num_layers=2, seed=1))


def test_book_execute_only_merges_timings_and_reports_unexecuted(tmp_path):
    """`book --only` runs some chapters; the others' times survive and the missing are named."""
    import json

    import nbformat

    from bertdrift import book

    root, build = tmp_path / "root", tmp_path / "build"
    (root / "notebooks").mkdir(parents=True)
    for name in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('profile = "auto"\noverrides = {}')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell("print(profile)")]
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                     "display_name": "Python 3"}
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    book.execute(build, "tiny", only=["01"], root=root)
    assert book.unexecuted(build, root) == ["02_b.ipynb"]
    book.execute(build, "tiny", only=["02"], root=root)
    assert book.unexecuted(build, root) == []
    assert set(json.loads((build / "timings.json").read_text())) == {"01_a", "02_b"}
    out = nbformat.read(build / "src" / "notebooks" / "02_b.ipynb", as_version=4)
    assert "tiny" in "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
