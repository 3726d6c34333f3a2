"""English-French sentence pairs (Tatoeba), tokenised, with vocabularies and padded batches.

The pairs are the 2017-09-29 release of the Tatoeba English-French file distributed by
manythings.org (142,787 lines ``English<TAB>French``).  :func:`load_eng_fra` finds
``eng-fra/fra.txt`` through :func:`attnlib.data.paths.locate` (downloading the original zip
when it is nowhere on disk), normalises and tokenises both sides, and filters by length.
:func:`make_translation_data` splits the pairs into train / validation / test sets *by
English sentence* (Tatoeba often has several French translations of one English sentence;
splitting by pair would put the same source in training and test) and builds the
vocabularies; :meth:`TranslationData.batches` yields padded tensors.

Token ids: ``0 = <pad>``, ``1 = <bos>``, ``2 = <eos>``, ``3 = <unk>`` in both vocabularies.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import torch
from torch import Tensor

from .paths import Dataset, RemoteFile, locate

__all__ = [
    "TATOEBA_ENG_FRA",
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "SPECIALS",
    "normalize",
    "tokenize",
    "read_pairs",
    "load_eng_fra",
    "Vocab",
    "pad_batch",
    "Batch",
    "TranslationData",
    "make_translation_data",
]

TATOEBA_ENG_FRA = Dataset(
    name="eng-fra",
    files=(RemoteFile("fra.txt", "5d10f7ccfce8d43c5486cbb43082148e"),),
    mirrors=(
        # the exact 2017-09-29 release, kept in a public repository (manythings.org serves
        # only its newest release, whose content and md5 change over time)
        "https://raw.githubusercontent.com/genimind/seq2seq/4f3f8eb0adde54fcc8b89394336b002e7961244c/",
        "https://raw.githubusercontent.com/genimind/seq2seq/843b8bc40396fbea4ac9171097122aacfc8b9660/",
    ),
    citation="Tatoeba English-French sentence pairs, 2017-09-29 release, www.manythings.org/anki",
    licence="CC BY 2.0 FR (attribution: www.manythings.org/anki and tatoeba.org)",
    archive=RemoteFile("fra-eng.zip", "c49e6073dca8524c9230ee8f68c3cf32"),
)

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
_PUNCTUATION = re.compile(r"([.,!?;:«»\"()])")


def normalize(text: str) -> str:
    """Lower-case, compose accents (NFC), turn no-break spaces into spaces, and put spaces
    around punctuation so that it becomes separate tokens.  Accents are kept: French needs them."""
    text = unicodedata.normalize("NFC", text).lower()
    text = text.replace("\u202f", " ").replace("\u00a0", " ").replace("\u2019", "'")
    text = _PUNCTUATION.sub(r" \1 ", text)
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """:func:`normalize`, then split on spaces: ``"Va !"`` -> ``["va", "!"]``."""
    return normalize(text).split()


def read_pairs(path: Union[str, Path], max_pairs: Optional[int] = None) -> list[tuple[str, str]]:
    """Read ``English<TAB>French`` lines.

    Raises:
        ValueError: a line without exactly two tab-separated, non-empty fields, naming the
            file, the line number and what it found.
    """
    pairs = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise ValueError(
                    f"{path}, line {number}: expected 'English<TAB>French' (2 non-empty tab-separated "
                    f"fields); got {len(fields)} field(s): {line.rstrip()[:80]!r}"
                )
            pairs.append((fields[0], fields[1]))
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
    return pairs


def load_eng_fra(
    *,
    max_len: Optional[int] = None,
    min_len: int = 1,
    max_pairs: Optional[int] = None,
    download: bool = True,
) -> list[tuple[list[str], list[str]]]:
    """Tokenised (English, French) pairs whose both sides have ``min_len..max_len`` tokens.

    Args:
        max_len: longest sentence kept, in tokens (punctuation counts); ``None`` keeps all.
        min_len: shortest sentence kept.
        max_pairs: read only the first lines of the file (it is sorted roughly by length).
        download: allow downloading the data set when it is not on disk.
    """
    path = locate(TATOEBA_ENG_FRA, download=download) / "fra.txt"
    pairs = []
    for english, french in read_pairs(path, max_pairs=max_pairs):
        src, tgt = tokenize(english), tokenize(french)
        if min_len <= len(src) and min_len <= len(tgt) and (max_len is None or max(len(src), len(tgt)) <= max_len):
            pairs.append((src, tgt))
    return pairs


class Vocab:
    """Token <-> id mapping with the four special tokens first.

    Args:
        sentences: tokenised sentences to count.
        min_freq: tokens seen fewer times map to ``<unk>``.
        max_size: keep at most this many tokens (specials included), the most frequent first.
    """

    def __init__(self, sentences: Sequence[Sequence[str]], min_freq: int = 1, max_size: Optional[int] = None) -> None:
        counts = Counter(token for sentence in sentences for token in sentence)
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_freq and t not in SPECIALS), key=lambda t: (-counts[t], t)
        )  # frequency, then alphabetical: deterministic
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        self.itos: list[str] = list(SPECIALS) + ranked
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, UNK) for t in tokens]
        return ([BOS] if add_bos else []) + ids + ([EOS] if add_eos else [])

    def decode(self, ids: Union[Sequence[int], Tensor], strip: bool = True) -> list[str]:
        """Tokens of ``ids``; with ``strip``, stop at ``<eos>`` and drop ``<pad>``/``<bos>``."""
        tokens = []
        for i in ids.tolist() if isinstance(ids, Tensor) else ids:
            if strip and i == EOS:
                break
            if strip and i in (PAD, BOS):
                continue
            tokens.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        return tokens


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = PAD) -> tuple[Tensor, Tensor]:
    """``(B, T)`` long tensor padded with ``pad_id`` and ``(B,)`` lengths."""
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    out = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out, lengths


@dataclass
class Batch:
    """A padded batch: ``src (B, S)`` with ``src_lengths (B,)``; ``tgt_in (B, T)`` starts with
    ``<bos>`` and ``tgt_out (B, T)`` ends with ``<eos>`` (the targets of teacher forcing)."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor

    def to(self, device: Union[str, torch.device]) -> "Batch":
        return Batch(*(t.to(device) for t in (self.src, self.src_lengths, self.tgt_in, self.tgt_out)))


@dataclass
class TranslationData:
    """Pairs split three ways, with one vocabulary per language (built on the training set)."""

    train: list[tuple[list[str], list[str]]]
    valid: list[tuple[list[str], list[str]]]
    test: list[tuple[list[str], list[str]]]
    src_vocab: Vocab
    tgt_vocab: Vocab

    def encode(self, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> Batch:
        src, src_lengths = pad_batch([self.src_vocab.encode(s, add_eos=True) for s, _ in pairs])
        tgt_in, _ = pad_batch([self.tgt_vocab.encode(t, add_bos=True) for _, t in pairs])
        tgt_out, _ = pad_batch([self.tgt_vocab.encode(t, add_eos=True) for _, t in pairs])
        return Batch(src, src_lengths, tgt_in, tgt_out)

    def batches(
        self,
        split: str = "train",
        batch_size: int = 64,
        shuffle: bool = True,
        generator: Optional[torch.Generator] = None,
    ) -> Iterator[Batch]:
        """Padded batches of one split; the source of every sentence ends with ``<eos>``."""
        pairs = {"train": self.train, "valid": self.valid, "test": self.test}.get(split)
        if pairs is None:
            raise ValueError(f"split must be 'train', 'valid' or 'test'; got {split!r}")
        order = torch.randperm(len(pairs), generator=generator).tolist() if shuffle else range(len(pairs))
        order = list(order)
        for start in range(0, len(order), batch_size):
            yield self.encode([pairs[i] for i in order[start : start + batch_size]])


def make_translation_data(
    pairs: Sequence[tuple[list[str], list[str]]],
    *,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
    min_freq: int = 2,
    max_vocab: Optional[int] = None,
    known_words_only: bool = False,
) -> TranslationData:
    """Split ``pairs`` by distinct English sentence, then build vocabularies on the training part.

    Args:
        min_freq, max_vocab: see :class:`Vocab` (one vocabulary per language).
        known_words_only: then drop, from every split, the pairs with a word outside the
            vocabularies: a small vocabulary (for a quick run) then asks no model to produce
            words it cannot know.  The number of pairs dropped is what the vocabulary costs.
    """
    if not 0 <= valid_fraction < 1 or not 0 <= test_fraction < 1 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"fractions must leave a training set; got valid {valid_fraction}, test {test_fraction}")
    sources = sorted({" ".join(src) for src, _ in pairs})
    order = torch.randperm(len(sources), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test, n_valid = int(len(sources) * test_fraction), int(len(sources) * valid_fraction)
    split_of = {}
    for rank, index in enumerate(order):
        split_of[sources[index]] = "test" if rank < n_test else "valid" if rank < n_test + n_valid else "train"
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    for src, tgt in pairs:
        splits[split_of[" ".join(src)]].append((src, tgt))
    src_vocab = Vocab([s for s, _ in splits["train"]], min_freq=min_freq, max_size=max_vocab)
    tgt_vocab = Vocab([t for _, t in splits["train"]], min_freq=min_freq, max_size=max_vocab)
    if known_words_only:
        for name, split in splits.items():
            splits[name] = [
                (s, t) for s, t in split if all(w in src_vocab.stoi for w in s) and all(w in tgt_vocab.stoi for w in t)
            ]
    return TranslationData(splits["train"], splits["valid"], splits["test"], src_vocab, tgt_vocab)
