"""attnlib.captioning.annotation_encoder: the CNN that turns an image into annotation vectors."""

from __future__ import annotations

import pytest
import torch

from attnlib.captioning import AnnotationEncoder, DigitClassifier


@pytest.mark.parametrize(
    "size,channels,grid",
    [
        (48, (8, 16, 32), (6, 6)),
        (32, (8, 8), (8, 8)),
        (64, (4, 4, 4, 12), (4, 4)),
        (16, (8, 16, 32), (2, 2)),
    ],
)
def test_grid_and_annotation_shapes(size, channels, grid):
    encoder = AnnotationEncoder(1, channels)
    a = encoder(torch.rand(3, 1, size, size))
    assert encoder.grid(size, size) == grid
    assert a.shape == (3, grid[0] * grid[1], channels[-1]) and encoder.annotation_dim == channels[-1]


def test_annotations_are_the_feature_map_in_row_major_order():
    torch.manual_seed(0)
    encoder = AnnotationEncoder(1, (4, 4))
    x = torch.rand(2, 1, 32, 32)
    maps = encoder.features(x)  # (2, 4, 8, 8)
    a = encoder(x)
    row, col = 3, 5
    assert torch.equal(a[:, row * 8 + col], maps[:, :, row, col])


def test_a_cell_s_annotation_only_sees_its_neighbourhood():
    """Changing a far corner of the image leaves the first cell's annotation unchanged: the receptive field is local."""
    torch.manual_seed(0)
    encoder = AnnotationEncoder(1, (4, 4, 4))
    x = torch.rand(1, 1, 48, 48)
    y = x.clone()
    y[..., 40:, 40:] = 0
    a, b = encoder(x), encoder(y)
    assert torch.equal(a[0, 0], b[0, 0]) and not torch.equal(a[0, 35], b[0, 35])


def test_the_classifier_reads_the_most_active_cell():
    torch.manual_seed(0)
    encoder = AnnotationEncoder(1, (4, 6))
    classifier = DigitClassifier(encoder, classes=10)
    x = torch.rand(5, 1, 16, 16)
    expected = classifier.head(encoder(x).amax(dim=1))
    assert classifier(x).shape == (5, 10) and torch.allclose(classifier(x), expected)
    assert classifier.encoder is encoder  # pretraining trains the captioner's own encoder


@pytest.mark.parametrize(
    "shape,message",
    [
        ((2, 1, 44, 44), r"divisible by 8 \(one halving per block\); got images \(2, 1, 44, 44\)"),
        ((2, 3, 48, 48), "must have 1 channels"),
        ((1, 48, 48), "exactly 4 dimensions"),
    ],
)
def test_bad_images_raise(shape, message):
    with pytest.raises(ValueError, match=message):
        AnnotationEncoder()(torch.rand(*shape))


def test_bad_channels_raise():
    with pytest.raises(ValueError, match="non-empty sequence of positive sizes"):
        AnnotationEncoder(1, ())
    with pytest.raises(ValueError, match="non-empty sequence of positive sizes"):
        AnnotationEncoder(1, (8, 0))
