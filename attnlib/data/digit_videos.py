"""Short generated videos whose label is decided by one frame.

For attention over time (Sharma, Kiros & Salakhutdinov, 2015, "Action Recognition using
Visual Attention", arXiv:1511.04119) on data where the truth is known.  A video is ``frames``
frames of ``size x size`` pixels.  Every frame shows clutter: ``clutter`` random 6 x 6
pieces of other MNIST digits (LeCun et al., 1998), drawn afresh in each frame.  A digit
moves along a straight line across the clip, but is *shown* in one frame only, the deciding
frame ``key_frames[n]``; the label is its class.  A model that averages the frames dilutes
the one frame that matters among the clutter; attention over time can pick it out, and
:func:`frame_attention_share` scores that attention against the deciding frame (uniform
attention scores ``1 / frames``).  ``boxes[n, t]`` is where the digit is (or would be) in
frame ``t``, so spatial attention inside the deciding frame can be scored too.

Every example is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_rank, shape_str

__all__ = ["DigitVideos", "digit_videos", "frame_attention_share"]

_CROP = slice(4, 24)


class DigitVideos(NamedTuple):
    """``N`` videos of ``T`` frames."""

    videos: Tensor  #: ``(N, T, 1, size, size)`` float32 in ``[0, 1]``
    labels: Tensor  #: ``(N,)`` int64 class of the digit shown in the deciding frame
    key_frames: Tensor  #: ``(N,)`` int64 index of the deciding frame
    boxes: Tensor  #: ``(N, T, 4)`` int64 ``(x, y, w, h)`` of the moving digit in each frame


def digit_videos(
    digits: Tensor,
    digit_labels: Tensor,
    n: int,
    *,
    seed: int = 0,
    frames: int = 8,
    size: int = 32,
    digit_size: int = 14,
    clutter: int = 4,
) -> DigitVideos:
    """Generate ``n`` videos from a pool of MNIST digits.

    Args:
        digits: ``(M, 28, 28)`` uint8 MNIST images; ``digit_labels``: ``(M,)`` their classes.
        n: number of videos.
        seed: example ``i`` is a pure function of ``(seed, i)``.
        frames: ``T``, frames per video (at least 2).
        size: frame side in pixels.
        digit_size: side of the digit (its 20 x 20 ink box resized), at most ``size``.
        clutter: pieces of clutter per frame.

    Raises:
        ValueError: bad pool shapes or dtype, or sizes out of range.
    """
    check_rank(digits, "digits", 3, "(M, 28, 28)")
    if tuple(digits.shape[1:]) != (28, 28) or digits.dtype != torch.uint8:
        raise ValueError(f"digits must be uint8 MNIST images (M, 28, 28); got {shape_str(digits.shape)} {digits.dtype}")
    if digit_labels.shape != digits.shape[:1]:
        raise ValueError(f"digit_labels must have shape ({digits.shape[0]},); got {shape_str(digit_labels.shape)}")
    if frames < 2 or not 6 <= digit_size <= size or clutter < 0:
        raise ValueError(
            f"need frames >= 2, 6 <= digit_size <= size and clutter >= 0; "
            f"got frames={frames}, size={size}, digit_size={digit_size}, clutter={clutter}"
        )
    videos = torch.zeros(n, frames, 1, size, size)
    labels = torch.zeros(n, dtype=torch.long)
    key_frames = torch.zeros(n, dtype=torch.long)
    boxes = torch.zeros(n, frames, 4, dtype=torch.long)
    span = size - digit_size
    piece = 6
    for i in range(n):
        g = torch.Generator().manual_seed((seed * 1_000_003 + i) % (2**63 - 1))
        for t in range(frames):
            for _ in range(clutter):
                src = digits[int(torch.randint(len(digits), (1,), generator=g))].float().div(255)  # (28, 28)
                sy, sx = (int(v) for v in torch.randint(4, 24 - piece, (2,), generator=g))
                y, x = (int(v) for v in torch.randint(0, size - piece + 1, (2,), generator=g))
                patch = src[sy : sy + piece, sx : sx + piece]
                videos[i, t, 0, y : y + piece, x : x + piece] = torch.maximum(
                    videos[i, t, 0, y : y + piece, x : x + piece], patch
                )
        start = torch.randint(0, span + 1, (2,), generator=g).float()  # (x, y)
        end = torch.randint(0, span + 1, (2,), generator=g).float()
        for t in range(frames):
            xy = (start + (end - start) * t / (frames - 1)).round().long()
            boxes[i, t] = torch.tensor([int(xy[0]), int(xy[1]), digit_size, digit_size])
        key = int(torch.randint(frames, (1,), generator=g))
        index = int(torch.randint(len(digits), (1,), generator=g))
        src = digits[index, _CROP, _CROP].float().div(255)
        glyph = F.interpolate(src[None, None], size=(digit_size, digit_size), mode="bilinear", align_corners=False)
        glyph = glyph[0, 0]  # (digit_size, digit_size)
        x, y = int(boxes[i, key, 0]), int(boxes[i, key, 1])
        region = videos[i, key, 0, y : y + digit_size, x : x + digit_size]
        videos[i, key, 0, y : y + digit_size, x : x + digit_size] = torch.maximum(region, glyph.clamp(0, 1))
        labels[i] = int(digit_labels[index])
        key_frames[i] = key
    return DigitVideos(videos, labels, key_frames, boxes)


def frame_attention_share(weights: Tensor, key_frames: Tensor) -> Tensor:
    """Attention each video gives its deciding frame.

    Args:
        weights: ``(N, T)`` attention over frames (rows sum to one).
        key_frames: ``(N,)`` int64 deciding frame of each video.

    Returns:
        ``(N,)`` float; uniform attention scores ``1 / T``.

    Raises:
        ValueError: ``weights`` not 2-D, ``key_frames`` of the wrong shape, dtype or range.
    """
    check_rank(weights, "weights", 2, "(N, T)")
    if key_frames.dtype != torch.long or tuple(key_frames.shape) != (weights.shape[0],):
        raise ValueError(
            f"key_frames must be int64 of shape ({weights.shape[0]},); "
            f"got {shape_str(key_frames.shape)} {key_frames.dtype}"
        )
    if len(key_frames) and (key_frames.min() < 0 or key_frames.max() >= weights.shape[1]):
        raise ValueError(f"key_frames must lie in 0..{weights.shape[1] - 1}; got {key_frames.tolist()}")
    return weights.gather(1, key_frames[:, None])[:, 0]  # (N,)
