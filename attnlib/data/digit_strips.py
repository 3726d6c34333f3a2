"""Strips of handwritten digits to read, with every digit's horizontal span kept.

For reading with attention (Lee & Osindero, 2016, arXiv:1603.03101; Ba, Mnih &
Kavukcuoglu, 2015, arXiv:1412.7755) on data where the truth is known.  A **strip** is a
``height x width`` image holding 3 to 6 MNIST digits (LeCun et al., 1998) side by side, left
to right, each cropped to its 20 x 20 ink box, rescaled to a random size around
``digit_size`` (scale noise), shifted up or down by a few pixels (jitter) and separated from
its neighbour by a random gap (spacing).  The label is the string of digits in reading
order, and ``spans[n, k] = (x0, x1)`` are the columns ``x0 <= x < x1`` the ``k``-th digit
occupies, so :func:`span_attention_share` can score a reader's attention: the share of each
character's attention that lands inside that character's digit.

The digit classes are drawn uniformly, or from a Markov chain over digits
(:func:`successor_bigram`): with ``bigram`` given, digit ``k + 1`` is drawn from
``bigram[digit k]``.  A reader trained on such strings learns the chain as an implicit
language model, which shows when a digit is hidden (:func:`occlude_digit`).

:func:`digit_pair_scenes` places two digits in a ``56 x 56`` scene, the first left of the
second, for the multiple-object recognition of Ba et al. (2015).

Every example is a pure function of ``(seed, index)``: its own generator is seeded from
those two numbers, so example ``i`` is the same whatever else is generated with it.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_rank, shape_str

__all__ = [
    "DigitStrips",
    "digit_strips",
    "successor_bigram",
    "occlude_digit",
    "span_attention_share",
    "DigitPairs",
    "digit_pair_scenes",
]

_CROP = slice(4, 24)  # MNIST digits sit in the central 20 x 20 of their 28 x 28 image


class DigitStrips(NamedTuple):
    """``N`` strips of at most ``K`` digits."""

    images: Tensor  #: ``(N, 1, height, width)`` float32 in ``[0, 1]``
    labels: Tensor  #: ``(N, K)`` int64 digit classes left to right, ``-1`` past the last digit
    lengths: Tensor  #: ``(N,)`` int64 number of digits
    spans: Tensor  #: ``(N, K, 2)`` int64 columns ``[x0, x1)`` of each digit, ``-1`` padded


class DigitPairs(NamedTuple):
    """``N`` scenes of two digits, the first left of the second."""

    images: Tensor  #: ``(N, 1, size, size)`` float32 in ``[0, 1]``
    labels: Tensor  #: ``(N, 2)`` int64 digit classes, left digit first
    boxes: Tensor  #: ``(N, 2, 4)`` int64 ``(x, y, w, h)`` of each digit


def _generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63 - 1))


def _check_pool(digits: Tensor, digit_labels: Tensor) -> None:
    check_rank(digits, "digits", 3, "(M, 28, 28)")
    if tuple(digits.shape[1:]) != (28, 28) or digits.dtype != torch.uint8:
        raise ValueError(f"digits must be uint8 MNIST images (M, 28, 28); got {shape_str(digits.shape)} {digits.dtype}")
    if digit_labels.shape != digits.shape[:1]:
        raise ValueError(
            f"digit_labels must have shape ({digits.shape[0]},), one per digit; got {shape_str(digit_labels.shape)}"
        )


def _resized_pool(digits: Tensor, sizes: range) -> dict[int, Tensor]:
    """Every digit's 20 x 20 ink box resized to each size: ``{s: (M, s, s)}`` float in [0, 1]."""
    core = digits[:, _CROP, _CROP].float().div(255)[:, None]  # (M, 1, 20, 20)
    return {s: F.interpolate(core, size=(s, s), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1) for s in sizes}


def successor_bigram(strength: float = 0.7) -> Tensor:
    """A digit Markov chain: after digit ``d`` comes ``(d + 1) mod 10`` with probability
    ``strength``, any digit (uniformly) otherwise.  Returns ``(10, 10)`` rows summing to one."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1]; got {strength}")
    table = torch.full((10, 10), (1.0 - strength) / 10)
    table[torch.arange(10), (torch.arange(10) + 1) % 10] += strength
    return table  # (10, 10)


def digit_strips(
    digits: Tensor,
    digit_labels: Tensor,
    n: int,
    *,
    seed: int = 0,
    num_digits: tuple[int, int] = (3, 6),
    height: int = 16,
    digit_size: int = 12,
    scale_noise: int = 2,
    max_gap: int = 2,
    jitter: int = 2,
    width: Optional[int] = None,
    bigram: Optional[Tensor] = None,
) -> DigitStrips:
    """Generate ``n`` strips from a pool of MNIST digits.

    Args:
        digits: ``(M, 28, 28)`` uint8 MNIST images to draw from; ``digit_labels``: ``(M,)`` their classes.
        n: number of strips.
        seed: example ``i`` is a pure function of ``(seed, i)``.
        num_digits: ``(least, most)`` digits per strip, drawn uniformly.
        height: strip height in pixels.
        digit_size: mean digit side in pixels; each digit's side is drawn uniformly from
            ``digit_size ± scale_noise``.
        max_gap: columns between neighbours, drawn uniformly from ``0..max_gap``.
        jitter: vertical shift range; the digit's top row is drawn around the centre line.
        width: strip width; default: the widest string fits, rounded up to a multiple of 4.
        bigram: ``(10, 10)`` transition probabilities of the digit string (default: uniform).

    Raises:
        ValueError: a digit that cannot fit the strip, bad pool shapes, or a bad ``bigram``.
    """
    _check_pool(digits, digit_labels)
    least, most = num_digits
    if not 1 <= least <= most:
        raise ValueError(f"num_digits must be (least, most) with 1 <= least <= most; got {num_digits}")
    largest = digit_size + scale_noise
    if largest > height or digit_size - scale_noise < 4:
        raise ValueError(f"digit sides {digit_size}±{scale_noise} must lie in 4..height = {height}")
    needed = most * (largest + max_gap)
    if width is None:
        width = -(-needed // 4) * 4
    if width < needed:
        raise ValueError(f"width must hold {most} digits of up to {largest} px with gaps: >= {needed}; got {width}")
    if bigram is not None and (tuple(bigram.shape) != (10, 10) or not torch.allclose(bigram.sum(1), torch.ones(10))):
        raise ValueError(f"bigram must be (10, 10) with rows summing to 1; got shape {shape_str(bigram.shape)}")
    sizes = range(digit_size - scale_noise, largest + 1)
    pool = _resized_pool(digits, sizes)
    by_class = [torch.nonzero(digit_labels == c)[:, 0] for c in range(10)]
    images = torch.zeros(n, 1, height, width)
    labels = torch.full((n, most), -1, dtype=torch.long)
    spans = torch.full((n, most, 2), -1, dtype=torch.long)
    lengths = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        g = _generator(seed, i)
        k = int(torch.randint(least, most + 1, (1,), generator=g))
        cls = [int(torch.randint(10, (1,), generator=g))]
        for _ in range(k - 1):
            row = bigram[cls[-1]] if bigram is not None else torch.full((10,), 0.1)
            cls.append(int(torch.multinomial(row, 1, generator=g)))
        side = torch.randint(sizes.start, sizes.stop, (k,), generator=g).tolist()
        gaps = torch.randint(0, max_gap + 1, (k,), generator=g).tolist()
        used = sum(side) + sum(gaps[1:])
        x = int(torch.randint(0, width - used + 1, (1,), generator=g))
        for j in range(k):
            s = side[j]
            x += gaps[j] if j else 0
            choices = by_class[cls[j]]
            pick = int(choices[int(torch.randint(len(choices), (1,), generator=g))])
            centre = (height - s) // 2
            y = min(max(centre + int(torch.randint(-jitter, jitter + 1, (1,), generator=g)), 0), height - s)
            patch = pool[s][pick]  # (s, s)
            region = images[i, 0, y : y + s, x : x + s]
            images[i, 0, y : y + s, x : x + s] = torch.maximum(region, patch)
            labels[i, j], spans[i, j, 0], spans[i, j, 1] = cls[j], x, x + s
            x += s
        lengths[i] = k
    return DigitStrips(images, labels, lengths, spans)


def occlude_digit(strips: DigitStrips, position: int | Tensor) -> Tensor:
    """The strips' images with the digit at ``position`` (one index, or ``(N,)`` indices) blanked.

    Returns ``(N, 1, height, width)``: the columns of that digit's span set to zero.

    Raises:
        ValueError: a position outside some strip's string.
    """
    n = strips.images.shape[0]
    pos = torch.as_tensor(position, dtype=torch.long).expand(n)  # (N,)
    if bool((pos < 0).any()) or bool((pos >= strips.lengths).any()):
        raise ValueError(f"position must lie in 0..length-1 of every strip; got {position}")
    images = strips.images.clone()
    span = strips.spans[torch.arange(n), pos]  # (N, 2)
    cols = torch.arange(images.shape[-1])  # (W,)
    inside = (cols[None] >= span[:, :1]) & (cols[None] < span[:, 1:])  # (N, W)
    return images.masked_fill(inside[:, None, None, :], 0.0)


def span_attention_share(weights: Tensor, spans: Tensor, lengths: Tensor, width: int, margin: float = 0.0) -> Tensor:
    """Share of each character's attention inside its digit's span.

    The ``S`` feature columns tile the strip: column ``j`` covers pixels
    ``[j W / S, (j + 1) W / S)`` and counts as inside a span ``[x0, x1)`` when its centre
    lies in ``[x0 - margin, x1 + margin)``.

    Args:
        weights: ``(N, K, S)`` attention of the first ``K`` output characters over the columns.
        spans: ``(N, K', 2)`` with ``K' >= K``, pixel spans of the digits.
        lengths: ``(N,)`` number of digits; characters past the length are ignored.
        width: strip width ``W`` in pixels.

    Returns:
        ``(N, K)`` the share in ``[0, 1]``, ``NaN`` past each strip's length.
    """
    check_rank(weights, "weights", 3, "(N, K, S)")
    check_rank(spans, "spans", 3, "(N, K, 2)")
    N, K, S = weights.shape
    if spans.shape[0] != N or spans.shape[1] < K:
        raise ValueError(
            f"spans must cover the N = {N} strips and K = {K} characters of weights {shape_str(weights.shape)}; "
            f"got {shape_str(spans.shape)}"
        )
    centres = (torch.arange(S, dtype=torch.float32) + 0.5) * width / S  # (S,)
    lo = spans[:, :K, :1].float() - margin  # (N, K, 1)
    hi = spans[:, :K, 1:].float() + margin  # (N, K, 1)
    inside = (centres >= lo) & (centres < hi)  # (N, K, S)
    share = (weights * inside).sum(-1)  # (N, K)
    real = torch.arange(K)[None] < lengths[:, None]  # (N, K)
    return share.masked_fill(~real, float("nan"))


def digit_pair_scenes(
    digits: Tensor,
    digit_labels: Tensor,
    n: int,
    *,
    seed: int = 0,
    size: int = 56,
    digit_size: int = 20,
    vertical_jitter: Optional[int] = None,
) -> DigitPairs:
    """``n`` scenes of two digits at random places, the first wholly left of the second.

    The scene is split into a left and a right half; each digit (its 20 x 20 ink box, resized
    to ``digit_size``) is placed at a random position inside its half, so the two never overlap.
    ``vertical_jitter``: the digits' top rows lie within that many pixels of the centred
    position (default: anywhere from top to bottom).

    Raises:
        ValueError: a scene too small for two digits side by side, or bad pool shapes.
    """
    _check_pool(digits, digit_labels)
    if size < 2 * digit_size:
        raise ValueError(f"size must be at least 2 * digit_size = {2 * digit_size}; got {size}")
    pool = _resized_pool(digits, range(digit_size, digit_size + 1))[digit_size]  # (M, s, s)
    images = torch.zeros(n, 1, size, size)
    labels = torch.zeros(n, 2, dtype=torch.long)
    boxes = torch.zeros(n, 2, 4, dtype=torch.long)
    half = size // 2
    for i in range(n):
        g = _generator(seed, i)
        picks = torch.randint(len(pool), (2,), generator=g).tolist()
        for j in range(2):
            x = j * half + int(torch.randint(0, half - digit_size + 1, (1,), generator=g))
            if vertical_jitter is None:
                y = int(torch.randint(0, size - digit_size + 1, (1,), generator=g))
            else:
                y = (size - digit_size) // 2 + int(
                    torch.randint(-vertical_jitter, vertical_jitter + 1, (1,), generator=g)
                )
                y = min(max(y, 0), size - digit_size)
            region = images[i, 0, y : y + digit_size, x : x + digit_size]
            images[i, 0, y : y + digit_size, x : x + digit_size] = torch.maximum(region, pool[picks[j]])
            labels[i, j] = digit_labels[picks[j]]
            boxes[i, j] = torch.tensor([x, y, digit_size, digit_size])
    return DigitPairs(images, labels, boxes)
