"""DRAW: a recurrent variational auto-encoder that builds an image on a canvas, step by step.

Gregor, Danihelka, Graves, Rezende and Wierstra, *DRAW: A Recurrent Neural Network For Image
Generation*, ICML 2015 (arXiv:1502.04623), section 2.  With ``c_0 = 0`` and the LSTM states at
zero, for ``t = 1 .. T`` (eqs. 3 to 8):

    x^_t      = x - sigmoid(c_{t-1})                          error image
    r_t       = read(x, x^_t, h^dec_{t-1})
    h^enc_t   = LSTM^enc(h^enc_{t-1}, [r_t, h^dec_{t-1}])
    z_t       = mu_t + sigma_t eps_t,  eps_t ~ N(0, I)          a fresh draw at every step
    h^dec_t   = LSTM^dec(h^dec_{t-1}, z_t)
    c_t       = c_{t-1} + write(h^dec_t)

with ``(mu_t, log sigma_t^2)`` a linear function of ``h^enc_t`` (eq. 1).  ``sigmoid(c_T)``
are the Bernoulli means of the pixels, and the loss is the negative ELBO of
:func:`~attnlib.draw.elbo.negative_elbo` on binary images.  Sampling (section 2.3) draws
``z_t ~ N(0, I)`` and runs the decoder alone.

``read`` and ``write`` are :mod:`attnlib.draw.filterbank`'s modules, with or without
attention (``DRAWConfig.read_attention``, ``DRAWConfig.write_attention``).

Recording: with attention, ``with attnlib.record_attention(model) as maps`` collects
``"read"`` and ``"write"``, ``T`` tensors ``(B, 5)`` each: the windows
``(g_X, g_Y, delta, sigma, gamma)`` of every step (see :func:`~attnlib.draw.filterbank.window_boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.draw.filterbank import ReadAttention, ReadNoAttention, WriteAttention, WriteNoAttention

__all__ = ["DRAWConfig", "DRAWOutput", "DRAW"]


@dataclass(frozen=True)
class DRAWConfig:
    """Hyperparameters of :class:`DRAW` (defaults: the paper's MNIST model with attention, Table 3)."""

    height: int = 28  # MNIST
    width: int = 28  # MNIST
    num_steps: int = 64  # T: glimpses / writes, paper's MNIST generation model
    read_n: int = 2  # read grid N x N, paper (MNIST with attention)
    write_n: int = 5  # write grid, paper
    read_attention: bool = True  # False: read the whole [x, x^]
    write_attention: bool = True  # False: write the whole canvas with a linear map
    encoder_size: int = 256  # LSTM units, paper
    decoder_size: int = 256  # LSTM units, paper
    latent_size: int = 100  # Z per step, paper


class DRAWOutput(NamedTuple):
    """What :meth:`DRAW.forward` returns."""

    logits: Tensor  #: ``(B, 1, H, W)`` the final canvas ``c_T`` (Bernoulli logits)
    canvases: Tensor  #: ``(B, T, 1, H, W)`` the canvas ``c_t`` after every step
    mu: Tensor  #: ``(B, T, Z)``
    logvar: Tensor  #: ``(B, T, Z)`` ``log sigma_t^2``
    z: Tensor  #: ``(B, T, Z)`` the latents used
    noise: Tensor  #: ``(B, T, Z)`` the ``eps_t`` drawn


class DRAW(nn.Module):
    """The DRAW network: encoder and decoder LSTMs, read, write, the latent layer.

    Args:
        config: a :class:`DRAWConfig`.
    """

    def __init__(self, config: DRAWConfig = DRAWConfig()) -> None:
        super().__init__()
        self.config = c = config
        if c.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1; got {c.num_steps}")
        self.read: ReadAttention | ReadNoAttention = (
            ReadAttention(c.decoder_size, c.read_n, c.height, c.width)
            if c.read_attention
            else ReadNoAttention(c.height, c.width)
        )
        self.encoder = nn.LSTMCell(self.read.output_size + c.decoder_size, c.encoder_size)
        self.latent = nn.Linear(c.encoder_size, 2 * c.latent_size)
        self.decoder = nn.LSTMCell(c.latent_size, c.decoder_size)
        self.write: WriteAttention | WriteNoAttention = (
            WriteAttention(c.decoder_size, c.write_n, c.height, c.width)
            if c.write_attention
            else WriteNoAttention(c.decoder_size, c.height, c.width)
        )

    def _check(self, x: Tensor, name: str) -> None:
        check_rank(x, name, 4, "(B, 1, H, W)")
        check_floating(x, name)
        expected = (1, self.config.height, self.config.width)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"{name} must have shape (B, {', '.join(map(str, expected))}); got {shape_str(x.shape)}")

    def forward(self, x: Tensor, noise: Optional[Tensor] = None) -> DRAWOutput:
        """Encode and reconstruct ``x``.

        Args:
            x: ``(B, 1, H, W)`` images (binary for the loss to be a bound).
            noise: ``(B, T, Z)``: the ``eps_t`` to use (default: drawn from ``N(0, I)``,
                a fresh draw at every step).

        Returns:
            A :class:`DRAWOutput`.

        Raises:
            ValueError: if ``x`` is not ``(B, 1, H, W)`` floating point, or ``noise`` not ``(B, T, Z)``.
        """
        self._check(x, "x")
        c = self.config
        B, T = x.shape[0], c.num_steps
        if noise is not None and tuple(noise.shape) != (B, T, c.latent_size):
            raise ValueError(
                f"noise must have shape (B, T, Z) = ({B}, {T}, {c.latent_size}); got {shape_str(noise.shape)}"
            )
        image = x[:, 0]  # (B, H, W)
        canvas = torch.zeros_like(image)  # (B, H, W)
        h_enc = c_enc = x.new_zeros(B, c.encoder_size)
        h_dec = c_dec = x.new_zeros(B, c.decoder_size)
        canvases, mus, logvars, zs, eps_all = [], [], [], [], []
        for t in range(T):
            x_hat = image - torch.sigmoid(canvas)  # (B, H, W)
            r = self.read(image, x_hat, h_dec)  # (B, R)
            h_enc, c_enc = self.encoder(torch.cat([r, h_dec], dim=1), (h_enc, c_enc))  # (B, enc)
            mu, logvar = self.latent(h_enc).chunk(2, dim=1)  # (B, Z) each
            eps = torch.randn_like(mu) if noise is None else noise[:, t]  # (B, Z), new every step
            z = mu + (0.5 * logvar).exp() * eps  # (B, Z)
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))  # (B, dec)
            canvas = canvas + self.write(h_dec)  # (B, H, W)
            canvases.append(canvas)
            mus.append(mu)
            logvars.append(logvar)
            zs.append(z)
            eps_all.append(eps)
        steps = torch.stack(canvases, dim=1).unsqueeze(2)  # (B, T, 1, H, W)
        return DRAWOutput(
            steps[:, -1],
            steps,
            torch.stack(mus, 1),
            torch.stack(logvars, 1),
            torch.stack(zs, 1),
            torch.stack(eps_all, 1),
        )

    @torch.no_grad()
    def generate(self, num_images: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Sample from the prior: ``z_t ~ N(0, I)``, decoder and write only (section 2.3).

        Args:
            num_images: ``n``.
            generator: the draw of the ``z_t`` (CPU generator; seed it for reproducible samples).

        Returns:
            ``(n, T, 1, H, W)``: ``sigmoid(c_t)``, the Bernoulli means after every step.
        """
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1; got {num_images}")
        c = self.config
        device = next(self.parameters()).device
        z_all = torch.randn(num_images, c.num_steps, c.latent_size, generator=generator).to(device)  # (n, T, Z)
        canvas = torch.zeros(num_images, c.height, c.width, device=device)  # (n, H, W)
        h_dec = c_dec = torch.zeros(num_images, c.decoder_size, device=device)
        canvases = []
        for t in range(c.num_steps):
            h_dec, c_dec = self.decoder(z_all[:, t], (h_dec, c_dec))  # (n, dec)
            canvas = canvas + self.write(h_dec)  # (n, H, W)
            canvases.append(torch.sigmoid(canvas))
        return torch.stack(canvases, dim=1).unsqueeze(2)  # (n, T, 1, H, W)
