"""Date normalisation: a translation task whose correct alignment is known.

A date written in one of ten surface formats is translated into ISO 8601::

    "saturday, nov 21 2026"     ->  "2026-11-21"
    "11/21/26"                  ->  "2026-11-21"
    "the 21st of november, 2026"->  "2026-11-21"

Source and target are sequences of characters.  Every target character except the two
dashes comes from one field of the source (year, month or day), and the generator records
that field's character span, so an attention model can be *scored*: the share of each
output character's attention mass that falls on its field (see
:func:`attnlib.seq2seq.metrics.alignment_accuracy`).  Two-digit years stand for 1950-2049
(so ``"26"`` is 2026 and ``"71"`` is 1971); the weekday, when written, is a distractor that
no output character comes from.

Each example is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import torch

from .translation import Batch, Vocab, pad_batch

__all__ = [
    "DATE_FORMATS",
    "DateExample",
    "date_batches",
    "date_example",
    "date_examples",
    "date_vocabs",
    "encode_dates",
]

_MONTHS = (
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
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FIRST, _LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
_SOURCE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 ,./-'"
_TARGET_ALPHABET = "0123456789-"

Segment = tuple[str, Optional[str]]  # (text, field it carries: "year", "month", "day" or None)


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _segments(fmt: str, d: dt.date) -> list[Segment]:
    day, day2, month2 = str(d.day), f"{d.day:02d}", f"{d.month:02d}"
    name, mon = _MONTHS[d.month - 1], _MONTHS[d.month - 1][:3]
    year4, year2 = str(d.year), f"{d.year % 100:02d}"
    weekday = _WEEKDAYS[d.weekday()]
    table: dict[str, list[Segment]] = {
        "d month yyyy": [(day, "day"), (" ", None), (name, "month"), (" ", None), (year4, "year")],
        "month d, yyyy": [(name, "month"), (" ", None), (day, "day"), (", ", None), (year4, "year")],
        "dd/mm/yyyy": [(day2, "day"), ("/", None), (month2, "month"), ("/", None), (year4, "year")],
        "mm/dd/yy": [(month2, "month"), ("/", None), (day2, "day"), ("/", None), (year2, "year")],
        "weekday, mon d yyyy": [
            (weekday, None),
            (", ", None),
            (mon, "month"),
            (" ", None),
            (day, "day"),
            (" ", None),
            (year4, "year"),
        ],
        "yyyy.mm.dd": [(year4, "year"), (".", None), (month2, "month"), (".", None), (day2, "day")],
        "d mon. yyyy": [(day, "day"), (" ", None), (mon, "month"), (". ", None), (year4, "year")],
        "the dth of month, yyyy": [
            ("the ", None),
            (day, "day"),
            (_ordinal(d.day), None),
            (" of ", None),
            (name, "month"),
            (", ", None),
            (year4, "year"),
        ],
        "mon dth 'yy": [
            (mon, "month"),
            (" ", None),
            (day, "day"),
            (_ordinal(d.day), None),
            (" '", None),
            (year2, "year"),
        ],
        "dd-mon-yyyy": [(day2, "day"), ("-", None), (mon, "month"), ("-", None), (year4, "year")],
    }
    return table[fmt]


#: The ten surface formats, named by a pattern of their fields.
DATE_FORMATS = (
    "d month yyyy",
    "month d, yyyy",
    "dd/mm/yyyy",
    "mm/dd/yy",
    "weekday, mon d yyyy",
    "yyyy.mm.dd",
    "d mon. yyyy",
    "the dth of month, yyyy",
    "mon dth 'yy",
    "dd-mon-yyyy",
)


@dataclass(frozen=True)
class DateExample:
    """One date in one format.

    Attributes:
        source: the written date, e.g. ``"21 nov. 2026"``.
        target: ISO 8601, e.g. ``"2026-11-21"`` (always 10 characters).
        spans: one entry per target character: the ``(start, end)`` character span of the
            source field it comes from, or ``None`` for the dashes.
        date: the date itself.
        fmt: the format's name, one of :data:`DATE_FORMATS`.
    """

    source: str
    target: str
    spans: tuple[Optional[tuple[int, int]], ...]
    date: dt.date
    fmt: str


def _render(fmt: str, d: dt.date) -> DateExample:
    source, fields, at = "", {}, 0
    for text, field in _segments(fmt, d):
        if field is not None:
            fields[field] = (at, at + len(text))
        source += text
        at += len(text)
    target = d.isoformat()
    spans = tuple(fields["year"] for _ in range(4)) + (None,) + (fields["month"],) * 2 + (None,) + (fields["day"],) * 2
    return DateExample(source, target, spans, d, fmt)


def date_example(seed: int, index: int, formats: Sequence[str] = DATE_FORMATS) -> DateExample:
    """Example ``index`` of the stream ``seed``: a uniformly random date of 1950-2049 in a
    uniformly random format from ``formats``.  A pure function of its arguments."""
    unknown = set(formats) - set(DATE_FORMATS)
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {DATE_FORMATS}; got unknown {sorted(unknown)}")
    rng = random.Random(f"dates/{seed}/{index}")
    d = _FIRST + dt.timedelta(days=rng.randrange((_LAST - _FIRST).days + 1))
    return _render(formats[rng.randrange(len(formats))], d)


def date_examples(n: int, seed: int = 0, formats: Sequence[str] = DATE_FORMATS, start: int = 0) -> list[DateExample]:
    """Examples ``start .. start + n - 1`` of the stream ``seed``."""
    return [date_example(seed, i, formats) for i in range(start, start + n)]


def date_vocabs() -> tuple[Vocab, Vocab]:
    """Character vocabularies (source, target), fixed by the alphabets so that every model
    and every chapter numbers the characters the same way."""
    return Vocab([list(_SOURCE_ALPHABET)]), Vocab([list(_TARGET_ALPHABET)])


def encode_dates(examples: Sequence[DateExample], src_vocab: Vocab, tgt_vocab: Vocab) -> Batch:
    """A padded :class:`~attnlib.data.translation.Batch` of character ids; the source ends with
    ``<eos>`` (so its positions match the character positions of ``spans``)."""
    src, src_lengths = pad_batch([src_vocab.encode(list(e.source), add_eos=True) for e in examples])
    tgt_in, _ = pad_batch([tgt_vocab.encode(list(e.target), add_bos=True) for e in examples])
    tgt_out, _ = pad_batch([tgt_vocab.encode(list(e.target), add_eos=True) for e in examples])
    return Batch(src, src_lengths, tgt_in, tgt_out)


def date_batches(
    examples: Sequence[DateExample],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    batch_size: int = 64,
    generator: Optional[torch.Generator] = None,
) -> Iterator[Batch]:
    """One pass over ``examples`` in a random order drawn from ``generator``, as padded
    :class:`~attnlib.data.translation.Batch` es of ``batch_size`` (the last one may be smaller).

    Call it once per epoch; a seeded ``generator`` makes every epoch's order reproducible.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = torch.randperm(len(examples), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        yield encode_dates([examples[i] for i in order[start : start + batch_size]], src_vocab, tgt_vocab)
