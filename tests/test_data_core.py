"""UD, MNLI, SQuAD loaders and file resolution: real files plus tiny malformed ones."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from pathlib import Path

import pytest

from bertdrift.data import load_mnli, load_squad, load_ud, read_conllu, split_squad_by_article
from bertdrift.data.mnli import _read_file as read_mnli_file
from bertdrift.data.sources import resolve
from bertdrift.data.squad import read_squad_json
from bertdrift.errors import DataError

GOOD_CONLLU = (
    "# sent_id = s1\n# text = Dogs bark.\n"
    "1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n"
    "2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\tSpaceAfter=No\n"
    "3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_\n\n"
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_ud_dev_counts(data_dir: Path) -> None:
    ds = load_ud("dev", data_dir=data_dir)
    assert len(ds) == 2001
    assert sum(len(t) for t in ds["tokens"]) == 25147
    row = ds[1]
    assert row["tokens"][:2] == ["President", "Bush"]
    assert row["head"][1] == 5 and row["deprel"][0] == "nmod:desc"
    assert all(len(set(map(len, (r["tokens"], r["upos"], r["head"], r["deprel"])))) == 1
               for r in ds.select(range(200)))
    assert len(load_ud("test", data_dir=data_dir, limit=7)) == 7


def test_read_conllu_skips_multiword_and_empty_nodes(tmp_path: Path) -> None:
    text = (
        "# sent_id = m\n# text = don't go\n"
        "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n"
        "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n"
        "3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n"
        "3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t3:conj\t_\n\n"
    )
    p = tmp_path / "m.conllu"
    p.write_text(text + GOOD_CONLLU)
    rows = read_conllu(p)
    assert rows[0]["tokens"] == ["do", "n't", "go"] and rows[0]["head"] == [3, 3, 0]
    assert rows[1]["tokens"] == ["Dogs", "bark", "."]
    assert len(read_conllu(p, limit=1)) == 1


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ("2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_", "10 tab-separated"),
        ("2\tbark\tbark\tVERB\tVBP\t_\tX\troot\t_\t_", "HEAD"),
        ("two\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_", "word ID"),
    ],
)
def test_malformed_conllu_names_file_and_line(tmp_path: Path, bad_line: str, needle: str) -> None:
    lines = GOOD_CONLLU.splitlines()
    lines[3] = bad_line
    p = tmp_path / "bad.conllu"
    p.write_text(GOOD_CONLLU + "\n".join(lines) + "\n\n")
    with pytest.raises(DataError, match=rf"bad\.conllu:10: .*{needle}"):
        read_conllu(p)


def test_mnli_splits(data_dir: Path) -> None:
    dm = load_mnli("dev_matched", data_dir=data_dir)
    assert len(dm) == 9815
    assert len(load_mnli("dev_mismatched", data_dir=data_dir)) == 9832
    tr = load_mnli("train", data_dir=data_dir)
    assert len(tr) == 12081 and set(tr["label"]) == {0, 1, 2}
    assert len(set(tr["pairID"])) == len(tr)
    assert dm.features["label"].names == ["entailment", "neutral", "contradiction"]
    a = load_mnli("train", data_dir=data_dir, limit=50, seed=1)
    b = load_mnli("train", data_dir=data_dir, limit=50, seed=1)
    c = load_mnli("train", data_dir=data_dir, limit=50, seed=2)
    assert a["pairID"] == b["pairID"] != c["pairID"]
    assert a["pairID"] != tr["pairID"][:50]  # a random subset, not the first rows


def test_mnli_broken_json_and_label(tmp_path: Path) -> None:
    good = '{"pairID": "1e", "premise": "A.", "hypothesis": "B.", "label": "neutral"}\n'
    p = tmp_path / "m.jsonl"
    p.write_text(good + '{"pairID": "2e", "premise": \n')
    with pytest.raises(DataError, match=r"m\.jsonl:2: invalid JSON"):
        read_mnli_file(p)
    p.write_text(good + good.replace("neutral", "maybe"))
    with pytest.raises(DataError, match=r"m\.jsonl:2: label 'maybe'"):
        read_mnli_file(p)


def test_squad_dev_and_article_split(data_dir: Path) -> None:
    ds = load_squad("dev", data_dir=data_dir)
    assert len(ds) == 10570 and len(set(ds["title"])) == 48
    train, ev = split_squad_by_article(ds, 10)
    assert len(train) + len(ev) == len(ds)
    assert not set(train["title"]) & set(ev["title"])
    assert len(set(ev["title"])) == 10
    titles = list(dict.fromkeys(ds["title"]))
    assert set(ev["title"]) == set(titles[-10:])
    with pytest.raises(DataError):
        split_squad_by_article(ds, 48)


def test_squad_broken_json(tmp_path: Path) -> None:
    p = tmp_path / "dev.json"
    p.write_text('{"data": [\n{"title": "x",\n "paragraphs": [}\n')
    with pytest.raises(DataError, match=r"dev\.json:3: invalid JSON"):
        read_squad_json(p)


def test_resolve_offline_error_says_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"ud-ewt/en_ewt-ud-dev\.conllu.*looked in.*BERTDRIFT_DATA"):
        resolve("ud-ewt/en_ewt-ud-dev.conllu", data_dir=tmp_path / "empty")


class _FakeResponse(io.BytesIO):
    def __enter__(self) -> _FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_download_checks_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"hello corpus\n"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTDRIFT_OFFLINE", raising=False)
    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=0: _FakeResponse(payload))
    empty = tmp_path / "empty"
    with pytest.raises(DataError, match="sha256"):
        resolve("x/file.txt", data_dir=empty, url="https://example.org/f", sha256="0" * 64)
    downloads = tmp_path / "cache" / "downloads"
    assert not [p for p in downloads.rglob("*") if p.is_file()]
    good = hashlib.sha256(payload).hexdigest()
    got = resolve("x/file.txt", data_dir=empty, url="https://example.org/f", sha256=good)
    assert got == downloads / "x" / "file.txt" and got.read_bytes() == payload
    # a second call finds the cached file without downloading
    monkeypatch.setattr(urllib.request, "urlopen", None)
    assert resolve("x/file.txt", data_dir=empty) == got
