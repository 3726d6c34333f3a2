"""Data sets used in the course, loaded as plain tensors.

Each data set is described by a :class:`Dataset` (its files, their md5s, where to
download them, how to cite it). :func:`locate` finds its folder on disk, looking first
in ``$ATTNLIB_DATA`` and then in the cache (``~/.cache/attnlib``), and downloads the
files only when they are nowhere to be found; set ``ATTNLIB_OFFLINE=1`` to forbid that.
:mod:`attnlib.data.paths` documents the rules in full.

Loaders:
    :func:`load_mnist` and :func:`load_fashion_mnist` return ``(images, labels)`` with
    images uint8 of shape (N, 28, 28) and labels int64 of shape (N,).

    :func:`load_eng_fra` returns tokenised Tatoeba English-French pairs;
    :func:`make_translation_data` splits them and builds vocabularies and batches.

Generated data (pure functions of a seed, nothing to download):
    :func:`visual_search_scene` draws the displays of visual search experiments;
    :func:`date_examples` writes dates in ten formats with their ISO form and alignment;
    :func:`load_distorted_mnist` gives the Spatial Transformer paper's distorted MNIST
    variants (rotated, rotated-translated-scaled, projective, elastic);
    :func:`load_translated_mnist` and :func:`load_cluttered_mnist` place digits on a 60x60
    canvas, alone or among pieces of other digits (the RAM paper's tasks);
    :func:`load_digit_captions` draws scenes of 2 to 4 digits with a caption naming them
    and every digit's box, and :func:`localisation_score` scores a captioner's attention.
    :func:`digit_strips` draws strips of 3 to 6 digits with each digit's span (optionally with
    a digit-bigram bias), :func:`span_attention_share` scores a reader's attention, and
    :func:`digit_pair_scenes` draws two-digit 56x56 scenes.
    :func:`digit_scenes_qa` draws digit boards with a question, its answer and the cells it asks
    about (:func:`region_attention_share` scores attention on them); :func:`digit_videos` draws
    cluttered clips whose label is decided by one frame (:func:`frame_attention_share`).
"""

from __future__ import annotations

from attnlib.data.clutter import (
    PlacedDigits,
    cluttered_mnist,
    load_cluttered_mnist,
    load_translated_mnist,
    translated_mnist,
)
from attnlib.data.dates import (
    DATE_FORMATS,
    DateExample,
    date_batches,
    date_example,
    date_examples,
    date_vocabs,
    encode_dates,
)
from attnlib.data.digit_captions import (
    CAPTION_VOCAB,
    DIGIT_WORDS,
    DigitCaptions,
    decode_caption,
    digit_caption_scenes,
    digit_cells,
    encode_caption,
    load_digit_captions,
    localisation_score,
)
from attnlib.data.digit_scenes_qa import (
    NUM_ANSWERS,
    QUESTION_TYPES,
    DigitScenesQA,
    answer_text,
    digit_scenes_qa,
    position_rule_accuracy,
    question_text,
    question_type_prior,
    region_attention_share,
)
from attnlib.data.digit_strips import (
    DigitPairs,
    DigitStrips,
    digit_pair_scenes,
    digit_strips,
    occlude_digit,
    span_attention_share,
    successor_bigram,
)
from attnlib.data.digit_videos import DigitVideos, digit_videos, frame_attention_share
from attnlib.data.distortions import (
    OUTPUT_SIZE,
    VARIANTS,
    Distortion,
    apply_distortion,
    distort_mnist,
    load_distorted_mnist,
    sample_distortion,
)
from attnlib.data.mnist import (
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    MNIST,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from attnlib.data.paths import (
    ENV_VAR,
    OFFLINE_ENV_VAR,
    DataNotFoundError,
    Dataset,
    RemoteFile,
    cache_dir,
    locate,
    md5sum,
    search_dirs,
)
from attnlib.data.scenes import FEATURE_NAMES, SEARCH_KINDS, SearchScene, visual_search_scene
from attnlib.data.translation import (
    TATOEBA_ENG_FRA,
    Batch,
    TranslationData,
    Vocab,
    load_eng_fra,
    make_translation_data,
    pad_batch,
    tokenize,
)

__all__ = [
    "ENV_VAR",
    "OFFLINE_ENV_VAR",
    "cache_dir",
    "search_dirs",
    "RemoteFile",
    "Dataset",
    "DataNotFoundError",
    "md5sum",
    "locate",
    "read_idx",
    "MNIST",
    "FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "load_mnist",
    "load_fashion_mnist",
    "SEARCH_KINDS",
    "FEATURE_NAMES",
    "SearchScene",
    "visual_search_scene",
    "TATOEBA_ENG_FRA",
    "Batch",
    "TranslationData",
    "Vocab",
    "load_eng_fra",
    "make_translation_data",
    "pad_batch",
    "tokenize",
    "DATE_FORMATS",
    "DateExample",
    "date_example",
    "date_examples",
    "date_vocabs",
    "encode_dates",
    "date_batches",
    "VARIANTS",
    "OUTPUT_SIZE",
    "Distortion",
    "sample_distortion",
    "apply_distortion",
    "distort_mnist",
    "load_distorted_mnist",
    "PlacedDigits",
    "translated_mnist",
    "cluttered_mnist",
    "load_translated_mnist",
    "load_cluttered_mnist",
    "CAPTION_VOCAB",
    "DIGIT_WORDS",
    "DigitCaptions",
    "digit_caption_scenes",
    "load_digit_captions",
    "encode_caption",
    "decode_caption",
    "localisation_score",
    "digit_cells",
    "DigitStrips",
    "digit_strips",
    "successor_bigram",
    "occlude_digit",
    "span_attention_share",
    "DigitPairs",
    "digit_pair_scenes",
    "QUESTION_TYPES",
    "NUM_ANSWERS",
    "DigitScenesQA",
    "digit_scenes_qa",
    "question_text",
    "answer_text",
    "region_attention_share",
    "question_type_prior",
    "position_rule_accuracy",
    "DigitVideos",
    "digit_videos",
    "frame_attention_share",
]
