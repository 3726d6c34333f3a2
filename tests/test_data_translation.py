"""attnlib.data.translation: loaders, vocabularies, batches and the Tatoeba archive."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace

import pytest
import torch

from attnlib.data import DataNotFoundError, locate
from attnlib.data.translation import (
    BOS,
    EOS,
    PAD,
    TATOEBA_ENG_FRA,
    UNK,
    Vocab,
    load_eng_fra,
    make_translation_data,
    normalize,
    pad_batch,
    read_pairs,
    tokenize,
)


def test_normalize_keeps_accents_and_splits_punctuation():
    assert normalize("Ça alors\u202f!") == "ça alors !"
    assert tokenize("Je n\u2019ai pas faim, merci.") == ["je", "n'ai", "pas", "faim", ",", "merci", "."]
    assert tokenize("  Go.  ") == ["go", "."]


def test_read_pairs_rejects_a_malformed_line(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Go.\tVa !\nHi.\tSalut !\n", encoding="utf-8")
    assert read_pairs(good) == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert read_pairs(good, max_pairs=1) == [("Go.", "Va !")]
    bad = tmp_path / "bad.txt"
    bad.write_text("Go.\tVa !\nRun!\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: expected 'English<TAB>French'.*got 1 field\(s\): 'Run!'"):
        read_pairs(bad)
    three = tmp_path / "three.txt"
    three.write_text("Go.\tVa !\tCC-BY\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: .* got 3 field\(s\)"):
        read_pairs(three)
    empty_side = tmp_path / "empty.txt"
    empty_side.write_text("Go.\t \n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        read_pairs(empty_side)


def test_vocab_specials_order_and_round_trip():
    vocab = Vocab([["le", "chat"], ["le", "chien"], ["un", "chat"]], min_freq=2)
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "chat", "le"]  # by count, then alphabet
    ids = vocab.encode(["le", "chien"], add_bos=True, add_eos=True)
    assert ids == [BOS, vocab.stoi["le"], UNK, EOS]
    assert vocab.decode(ids + [PAD, PAD]) == ["le", "<unk>"]
    assert vocab.decode([vocab.stoi["chat"], EOS, vocab.stoi["le"]]) == ["chat"]  # stops at <eos>
    assert len(Vocab([["a", "b", "c"]], max_size=5)) == 5


def test_pad_batch():
    padded, lengths = pad_batch([[5, 6, 7], [8]])
    assert padded.tolist() == [[5, 6, 7], [8, PAD, PAD]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([])


def test_split_is_by_source_sentence_and_batches_are_shifted():
    pairs = [(["hi", str(i % 7)], ["salut", str(i)]) for i in range(70)]  # 7 sources, 10 translations each
    data = make_translation_data(pairs, valid_fraction=0.15, test_fraction=0.15, seed=0, min_freq=1)
    sources = {split: {" ".join(s) for s, _ in getattr(data, split)} for split in ("train", "valid", "test")}
    assert not (sources["train"] & sources["test"]) and not (sources["train"] & sources["valid"])
    assert sum(len(getattr(data, split)) for split in ("train", "valid", "test")) == 70
    batch = next(data.batches("train", batch_size=4, shuffle=False))
    assert batch.src.shape[0] == 4 and (batch.tgt_in[:, 0] == BOS).all()
    assert torch.equal(batch.tgt_in[:, 1:], batch.tgt_out[:, :-1])  # teacher forcing shift
    assert (batch.tgt_out == EOS).sum() == 4 and (batch.src == EOS).sum() == 4
    with pytest.raises(ValueError, match="split must be"):
        next(data.batches("dev"))
    with pytest.raises(ValueError, match="fractions"):
        make_translation_data(pairs, valid_fraction=0.5, test_fraction=0.5)


def test_known_words_only_drops_pairs_with_unknown_words():
    pairs = [(["a", "b"], ["x"]), (["a"], ["x", "y"]), (["a", "rare"], ["x"])] * 4 + [(["a", "c"], ["x"])]
    data = make_translation_data(pairs, valid_fraction=0.0, test_fraction=0.0, min_freq=2, known_words_only=True)
    words = {w for s, _ in data.train for w in s} | {w for _, t in data.train for w in t}
    assert "c" not in words and all(w in data.src_vocab.stoi or w in data.tgt_vocab.stoi for w in words)
    assert len(data.train) == 12  # the pair with "c" (seen once, below min_freq) is dropped
    assert len(make_translation_data(pairs, valid_fraction=0.0, test_fraction=0.0, min_freq=2).train) == 13


def test_real_tatoeba_file_when_present():
    try:
        locate(TATOEBA_ENG_FRA, download=False)
    except DataNotFoundError:
        pytest.skip("eng-fra/fra.txt not found locally (set ATTNLIB_DATA)")
    pairs = load_eng_fra(max_len=5, download=False)
    assert 10_000 < len(pairs) < 142_787
    assert all(1 <= len(s) <= 5 and 1 <= len(t) <= 5 for s, t in pairs)
    assert (["go", "."], ["va", "!"]) in pairs


def test_locate_extracts_the_dataset_from_its_zip_archive(data_dirs, http_folder):
    data, _ = data_dirs
    root, base = http_folder
    content = "Go.\tVa !\n".encode()
    archive = root / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fra.txt", content)
        z.writestr("_about.txt", b"about")
    md5 = lambda b: hashlib.md5(b).hexdigest()  # noqa: E731
    dataset = replace(
        TATOEBA_ENG_FRA,
        name="eng-fra-test",
        files=(replace(TATOEBA_ENG_FRA.files[0], md5=md5(content)),),
        mirrors=(base + "missing/", base),
        archive=replace(TATOEBA_ENG_FRA.archive, md5=md5(archive.read_bytes())),
    )
    folder = locate(dataset)
    assert folder == data / "eng-fra-test"
    assert sorted(p.name for p in folder.iterdir()) == ["fra.txt"]  # archive removed, nothing else kept
    assert read_pairs(folder / "fra.txt") == [("Go.", "Va !")]
    wrong = replace(dataset, name="eng-fra-wrong", files=(replace(dataset.files[0], md5="0" * 32),))
    with pytest.raises(DataNotFoundError, match=r"fra.txt in fra-eng.zip: expected md5 0{32}"):
        locate(wrong)
    assert list((data / "eng-fra-wrong").iterdir()) == []
