"""Tests for attnlib.data.distortions (the distorted-MNIST variants of the STN paper)."""

from __future__ import annotations

import pytest
import torch

from attnlib.data.distortions import (
    OUTPUT_SIZE,
    VARIANTS,
    Distortion,
    apply_distortion,
    distort_mnist,
    sample_distortion,
)


def _digits(n: int = 6, seed: int = 0) -> torch.Tensor:
    """Random blobby 'digits': uint8 (n, 28, 28) with an empty 4-pixel border like MNIST."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 4:24, 4:24] = torch.randint(0, 256, (n, 20, 20), generator=g, dtype=torch.uint8)
    return images


def _hand_made(variant: str, n: int, **fields: torch.Tensor) -> Distortion:
    params = dict(
        angle=torch.zeros(n), scale=torch.ones(n), shift=torch.zeros(n, 2), corners=torch.zeros(n, 4, 2), flow=None
    )
    params.update(fields)
    return Distortion(variant, **params)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n", [1, 5])
def test_shapes_and_range(variant: str, n: int) -> None:
    out = distort_mnist(_digits(n), variant, seed=3)
    size = OUTPUT_SIZE[variant]
    assert out.shape == (n, 1, size, size)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(out.sum()) > 0  # the digit did not leave the image


def test_output_sizes_follow_the_paper() -> None:
    assert OUTPUT_SIZE == {"R": 28, "RTS": 42, "P": 28, "E": 28}


@pytest.mark.parametrize("variant", VARIANTS)
def test_deterministic_and_a_pure_function_of_seed_and_index(variant: str) -> None:
    images = _digits(8)
    a = distort_mnist(images, variant, seed=11)
    b = distort_mnist(images, variant, seed=11)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # examples 5..7 regenerated alone, with their indices, give the same pictures
    part = distort_mnist(images[5:], variant, seed=11, indices=range(5, 8))
    torch.testing.assert_close(part, a[5:], rtol=0, atol=0)
    # another seed gives other distortions
    other = distort_mnist(images, variant, seed=12)
    assert not torch.equal(other, a)


def test_params_are_returned_and_lie_in_the_paper_ranges() -> None:
    _, p = distort_mnist(_digits(200), "RTS", seed=0, return_params=True)
    assert p.angle.shape == (200,) and p.shift.shape == (200, 2)
    assert float(p.angle.abs().max()) <= 45 and float(p.angle.abs().max()) > 30
    assert 0.7 <= float(p.scale.min()) and float(p.scale.max()) <= 1.2
    room = (42 - 28 * p.scale) / 2
    assert bool((p.shift.abs() <= room[:, None] + 1e-5).all())
    r = sample_distortion("R", 0, range(200))
    assert float(r.angle.abs().max()) <= 90 and float(r.angle.abs().max()) > 80
    pp = sample_distortion("P", 0, range(200))
    assert 0.75 <= float(pp.scale.min()) and float(pp.scale.max()) <= 1.0
    assert pp.corners.shape == (200, 4, 2) and float(pp.corners.abs().max()) > 0
    e = sample_distortion("E", 0, range(3))
    assert e.flow is not None and e.flow.shape == (3, 2, 28, 28)


def test_rotation_by_zero_is_the_identity() -> None:
    images = _digits(4)
    out = apply_distortion(images, _hand_made("R", 4))
    torch.testing.assert_close(out[:, 0], images.float() / 255, atol=1e-5, rtol=0)


def test_projective_with_zero_perturbation_is_the_identity() -> None:
    images = _digits(3)
    out = apply_distortion(images, _hand_made("P", 3))
    torch.testing.assert_close(out[:, 0], images.float() / 255, atol=1e-5, rtol=0)


def test_elastic_with_zero_field_is_the_identity() -> None:
    images = _digits(2)
    out = apply_distortion(images, _hand_made("E", 2, flow=torch.zeros(2, 2, 28, 28)))
    torch.testing.assert_close(out[:, 0], images.float() / 255, atol=1e-5, rtol=0)


@pytest.mark.parametrize("angle, expected", [(90.0, (6, 13)), (-90.0, (21, 14)), (180.0, (14, 6))])
def test_a_known_rotation_moves_a_known_pixel(angle: float, expected: tuple[int, int]) -> None:
    # pixel (row 13, col 21) sits 7.5 px right of and 0.5 px above the centre (x, y) = (7.5, -0.5);
    # counter-clockwise by 90 degrees on screen it goes 7.5 px up: (x, y) = (-0.5, -7.5) -> (row 6, col 13)
    image = torch.zeros(1, 28, 28)
    image[0, 13, 21] = 1.0
    out = apply_distortion(image, _hand_made("R", 1, angle=torch.tensor([angle])))[0, 0]
    row, col = divmod(int(out.argmax()), 28)
    assert (row, col) == expected
    assert float(out.max()) == pytest.approx(1.0, abs=1e-5)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-5)


def test_rts_without_rotation_or_scale_centres_the_digit_in_the_canvas() -> None:
    images = _digits(1)
    out = apply_distortion(images, _hand_made("RTS", 1))[0, 0]
    torch.testing.assert_close(out[7:35, 7:35], images[0].float() / 255, atol=1e-5, rtol=0)
    assert float(out[:7].sum()) == 0 and float(out[35:].sum()) == 0


def test_rts_shift_moves_the_digit_by_whole_pixels() -> None:
    images = _digits(1)
    out = apply_distortion(images, _hand_made("RTS", 1, shift=torch.tensor([[3.0, -5.0]])))[0, 0]
    torch.testing.assert_close(out[2:30, 10:38], images[0].float() / 255, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["X", "rts", "", None])
def test_bad_variant_raises(variant: object) -> None:
    with pytest.raises(ValueError, match="variant must be one of 'R', 'RTS', 'P', 'E'"):
        distort_mnist(_digits(1), variant, seed=0)  # type: ignore[arg-type]


def test_bad_images_raise() -> None:
    with pytest.raises(ValueError, match=r"images must have exactly 3 dimensions \(N, 28, 28\); got shape \(28, 28\)"):
        distort_mnist(torch.zeros(28, 28), "R", seed=0)
    with pytest.raises(ValueError, match=r"images must have shape \(N, 28, 28\); got shape \(2, 32, 32\)"):
        distort_mnist(torch.zeros(2, 32, 32), "R", seed=0)
    with pytest.raises(ValueError, match="uint8 .* or float .*; got dtype torch.int64"):
        distort_mnist(torch.zeros(2, 28, 28, dtype=torch.long), "R", seed=0)
    with pytest.raises(ValueError, match="indices must have one entry per image"):
        distort_mnist(_digits(3), "R", seed=0, indices=range(2))
