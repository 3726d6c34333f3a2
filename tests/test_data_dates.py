"""attnlib.data.dates: the date-normalisation task."""

from __future__ import annotations

import datetime as dt

import pytest
import torch

from attnlib.data.dates import DATE_FORMATS, date_batches, date_example, date_examples, date_vocabs, encode_dates
from attnlib.data.translation import EOS, UNK


def _field_text(example, span):
    return example.source[span[0] : span[1]]


@pytest.mark.parametrize("fmt", DATE_FORMATS)
def test_every_format_spans_point_at_their_fields(fmt):
    months = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
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
        batches = list(
            date_batches(examples, src_vocab, tgt_vocab, batch_size=4, generator=torch.Generator().manual_seed(seed))
        )
        assert [b.src.shape[0] for b in batches] == [4, 4, 2]
        return ["".join(src_vocab.decode(row)) for b in batches for row in b.src]

    first = sources(0)
    assert sorted(first) == sorted(e.source for e in examples)  # each example exactly once
    assert first == sources(0)  # the same seed gives the same order
    assert first != sources(1)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        next(date_batches(examples, src_vocab, tgt_vocab, batch_size=0))
