"""Flax NNX models: norms, attention, delta-rule mixers, the decoder LM, HF checkpoints."""

from rljax.models._attention import (
    Attention,
    KVCache,
    RopeScaling,
    apply_rope,
    dot_product_attention,
    rope_inverse_frequencies,
)
from rljax.models._deep_delta import DeepDelta, delta_residual
from rljax.models._delta_rule import (
    delta_rule_chunkwise,
    delta_rule_recurrent,
    delta_rule_step,
)
from rljax.models._deltanet import DeltaNet, GatedDeltaNet
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
from rljax.models.hf import config_from_hf, from_pretrained, save_pretrained

__all__ = [
    "MIXERS",
    "MLP",
    "Attention",
    "Block",
    "DeepDelta",
    "DeltaNet",
    "DyT",
    "GatedDeltaNet",
    "KVCache",
    "RMSNorm",
    "RopeScaling",
    "Transformer",
    "TransformerConfig",
    "apply_rope",
    "config_from_hf",
    "default_positions",
    "delta_residual",
    "delta_rule_chunkwise",
    "delta_rule_recurrent",
    "delta_rule_step",
    "dot_product_attention",
    "from_pretrained",
    "rope_inverse_frequencies",
    "save_pretrained",
    "weight_decay_mask",
]
