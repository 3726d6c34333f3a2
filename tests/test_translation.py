"""attnlib.data.translation and attnlib.data.dates: loaders, vocabularies, batches, spans."""
from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from dataclasses import replace

import pytest
import torch

from attnlib.data import DataNotFoundError, locate
from attnlib.data.dates import DATE_FORMATS, date_batches, date_example, date_examples, date_vocabs, encode_dates
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


# ----------------------------------------------------------------------------- reading and normalising
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


# ----------------------------------------------------------------------------- vocabularies and batches
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


# ----------------------------------------------------------------------------- the real download path
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


# ----------------------------------------------------------------------------- dates
def _field_text(example, span):
    return example.source[span[0]:span[1]]


@pytest.mark.parametrize("fmt", DATE_FORMATS)
def test_every_format_spans_point_at_their_fields(fmt):
    months = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
              "october", "november", "december"]
    for i in range(40):
        e = date_example(7, i, formats=(fmt,))
        year, month, day = (int(part) for part in e.target.split("-"))
        assert e.target == e.date.isoformat() and len(e.target) == 10
        assert dt.date(1950, 1, 1) <= e.date <= dt.date(2049, 12, 31)
        assert e.spans[4] is None and e.spans[7] is None
        year_text = _field_text(e, e.spans[0])
        assert year_text == str(year) or year_text == f"{year % 100:02d}"
        month_text = _field_text(e, e.spans[5])
        assert month_text.isdigit() and int(month_text) == month or months[month - 1].startswith(month_text)
        assert int(_field_text(e, e.spans[8])) == day
        assert len({e.spans[t] for t in (0, 1, 2, 3)}) == 1 and e.spans[5] == e.spans[6] and e.spans[8] == e.spans[9]


def test_dates_are_reproducible_and_varied():
    assert date_examples(20, seed=3) == date_examples(20, seed=3)
    assert date_example(3, 5) == date_examples(10, seed=3)[5]
    assert date_examples(20, seed=3) != date_examples(20, seed=4)
    assert {e.fmt for e in date_examples(400, seed=0)} == set(DATE_FORMATS)
    weekday = next(e for e in date_examples(200, seed=0) if e.fmt.startswith("weekday"))
    assert weekday.source.startswith(weekday.date.strftime("%A").lower())
    with pytest.raises(ValueError, match="subset"):
        date_example(0, 0, formats=("dd.mm",))


def test_date_batches_match_the_character_positions():
    src_vocab, tgt_vocab = date_vocabs()
    examples = date_examples(5, seed=1)
    batch = encode_dates(examples, src_vocab, tgt_vocab)
    for b, e in enumerate(examples):
        n = int(batch.src_lengths[b])
        assert n == len(e.source) + 1 and int(batch.src[b, n - 1]) == EOS
        assert "".join(src_vocab.decode(batch.src[b])) == e.source
        assert "".join(tgt_vocab.decode(batch.tgt_out[b])) == e.target
    assert UNK not in batch.src.tolist()


def test_date_batches_visit_every_example_once_in_a_seeded_order():
    src_vocab, tgt_vocab = date_vocabs()
    examples = date_examples(10, seed=2)

    def sources(seed):
        batches = list(date_batches(examples, src_vocab, tgt_vocab, batch_size=4,
                                    generator=torch.Generator().manual_seed(seed)))
        assert [b.src.shape[0] for b in batches] == [4, 4, 2]
        return ["".join(src_vocab.decode(row)) for b in batches for row in b.src]

    first = sources(0)
    assert sorted(first) == sorted(e.source for e in examples)  # each example exactly once
    assert first == sources(0)  # the same seed gives the same order
    assert first != sources(1)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        next(date_batches(examples, src_vocab, tgt_vocab, batch_size=0))
