"""Soft attention in vision: channel, spatial and mixed attention modules, Spatial
Transformers, Dynamic Capacity Networks and a small Vision Transformer.

One mechanism per module file; the public names are re-exported here.  Every module that
transforms a feature map keeps its shape, ``(B, C, H, W) -> (B, C, H, W)``, and hands its
attention maps to :mod:`attnlib.record`; :func:`make_attention` builds one by name so that a
backbone (:class:`SmallCNN`) can swap the mechanism with one argument.
"""

from __future__ import annotations

from .backbone import SmallCNN, SmallCNNConfig
from .bam import BAM
from .cbam import CBAM, ChannelGate, SpatialGate
from .deletion_metric import deletion_area, deletion_curve
from .dynamic_capacity import (
    DCNConfig,
    DCNOutput,
    DynamicCapacityNetwork,
    entropy_saliency,
    extract_patches,
    select_top_k,
)
from .efficient_channel_attention import ECA, EfficientChannelAttention, eca_kernel_size
from .factory import ATTENTION_MODULES, make_attention
from .multiscale_attention import MultiScaleAttention
from .non_local import NONLOCAL_MODES, NonLocalBlock
from .residual_attention import PreActBottleneck, ResidualAttention
from .selective_kernel import SK, SelectiveKernel
from .spatial_transformer import STCNN, SpatialTransformer, STCNNConfig, affine_transform, output_box
from .squeeze_excite import SE, SqueezeExcite
from .vision_transformer import (
    PatchEmbedding,
    VisionTransformer,
    ViT,
    ViTAttention,
    ViTBlock,
    ViTConfig,
    attention_rollout,
    class_token_map,
)

__all__ = [
    "SmallCNN",
    "SmallCNNConfig",
    "BAM",
    "CBAM",
    "ChannelGate",
    "SpatialGate",
    "DCNConfig",
    "DCNOutput",
    "DynamicCapacityNetwork",
    "entropy_saliency",
    "extract_patches",
    "select_top_k",
    "EfficientChannelAttention",
    "eca_kernel_size",
    "ATTENTION_MODULES",
    "make_attention",
    "MultiScaleAttention",
    "NONLOCAL_MODES",
    "NonLocalBlock",
    "PreActBottleneck",
    "ResidualAttention",
    "SqueezeExcite",
    "SE",
    "SK",
    "ECA",
    "ViT",
    "SelectiveKernel",
    "STCNN",
    "STCNNConfig",
    "SpatialTransformer",
    "affine_transform",
    "output_box",
    "PatchEmbedding",
    "ViTAttention",
    "ViTBlock",
    "ViTConfig",
    "VisionTransformer",
    "attention_rollout",
    "class_token_map",
    "deletion_area",
    "deletion_curve",
]
