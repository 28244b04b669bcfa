"""Flax NNX models: norms, attention, delta-rule mixers, the decoder LM, HF checkpoints."""

from rljax.models._attention import (
    Attention,
    KVCache,
    RopeScaling,
    apply_rope,
    dot_product_attention,
    rope_inverse_frequencies,
)
from rljax.models._norms import DyT, RMSNorm
from rljax.models._transformer import (
    MIXERS,
    MLP,
    Block,
    Transformer,
    TransformerConfig,
    default_positions,
)
from rljax.models._weight_decay import weight_decay_mask

__all__ = [
    "MIXERS",
    "MLP",
    "Attention",
    "Block",
    "DyT",
    "KVCache",
    "RMSNorm",
    "RopeScaling",
    "Transformer",
    "TransformerConfig",
    "apply_rope",
    "default_positions",
    "dot_product_attention",
    "rope_inverse_frequencies",
    "weight_decay_mask",
]
