"""Decoder-only language model: pre-norm blocks of (attention | delta-rule mixer) + SwiGLU MLP."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from rljax.models._attention import Attention, RopeScaling
from rljax.models._deep_delta import DeepDelta
from rljax.models._deltanet import DeltaNet, GatedDeltaNet
from rljax.models._norms import DyT, RMSNorm

MIXERS = ("attention", "deltanet", "gated_deltanet")
NORMS = ("rmsnorm", "dyt")
RESIDUALS = ("add", "deep_delta")

_DEFAULT_INIT = nnx.initializers.normal(0.02)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransformerConfig:
  """Architecture of a :class:`Transformer` (LLaMA / Qwen2 / Qwen3 family plus DyT, delta mixers).

  ``num_kv_heads`` (None: = ``num_heads``), ``head_dim`` (None: ``d_model // num_heads``) and
  ``mixers`` (a single str: the same mixer in every layer) are resolved in ``__post_init__``,
  so after construction they are an int, an int and a ``num_layers``-tuple.
  """

  vocab_size: int
  d_model: int                       # D
  num_layers: int
  num_heads: int                     # H (attention query heads; delta-rule heads)
  num_kv_heads: int | None = None    # K for GQA (attention only)
  head_dim: int | None = None        # Dh
  mlp_dim: int                       # SwiGLU hidden width
  mlp_bias: bool = False             # LLaMA ``mlp_bias``
  # Norms: "rmsnorm" or "dyt" (arXiv 2503.10622) for every pre-norm and the final norm.
  norm: str = "rmsnorm"
  norm_eps: float = 1e-6             # RMSNorm epsilon (also the Qwen3 q/k norms)
  dyt_alpha_attn: float = 0.5        # DyT alpha init before the mixer (LLaMA 7B recipe: 0.8)
  dyt_alpha_mlp: float = 0.5         # DyT alpha init before the MLP (LLaMA 7B recipe: 0.2)
  dyt_alpha_final: float = 0.5       # DyT alpha init of the final norm (LLaMA 7B recipe: 0.2)
  dyt_bias: bool = True              # False: the DyT LLaMA variant without bias
  embedding_scale: bool = False      # learnable scalar after the embedding, init sqrt(D)
  # Mixers: one of MIXERS per layer (hybrids allowed).
  mixers: str | tuple[str, ...] = "attention"
  residual: str = "add"              # "add" or "deep_delta" (arXiv 2601.00417)
  deep_delta_value: str = "constant"  # Deep Delta v: "constant" or "linear" (Linear(x))
  deep_delta_value_constant: float = 2.0  # the constant v (the authors' default)
  deep_delta_beta_init: float = 1.0  # beta = 2 sigmoid(Linear(norm(x))) at init, in [0, 2]
  tie_embeddings: bool = False       # lm_head = embedding^T
  attention_bias: bool = False       # q/k/v projection biases (Qwen2)
  attention_out_bias: bool = False   # o projection bias (LLaMA / Qwen3 with attention_bias=True)
  qk_norm: bool = False              # per-head RMSNorm on q and k (Qwen3)
  rope_theta: float = 10_000.0
  rope_scaling: RopeScaling | None = None
  max_position_embeddings: int = 4096  # informational (HF export); the cache sets the real limit
  # Delta-rule mixers (DeltaNet / Gated DeltaNet): num_heads heads of head_dim (Dk = Dv).
  delta_conv_size: int = 4           # causal depthwise short-conv kernel
  delta_output_gate: bool = True     # output RMSNorm gated by silu(linear(x))
  delta_chunk_size: int = 64         # chunkwise-parallel chunk length
  delta_mode: str = "chunk"          # "chunk" (WY/UT chunkwise) or "recurrent" (lax.scan)
  init_std: float = 0.02             # normal init of kernels and embeddings
  dtype: Any = jnp.float32           # activations / compute
  param_dtype: Any = jnp.float32
  remat: bool = False                # rematerialise each block in the backward pass

  def __post_init__(self):
    for name in ("vocab_size", "d_model", "num_layers", "num_heads", "mlp_dim"):
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if self.num_kv_heads is None:
      object.__setattr__(self, "num_kv_heads", self.num_heads)
    if self.num_kv_heads <= 0 or self.num_heads % self.num_kv_heads:
      raise ValueError(
          f"num_kv_heads must be positive and divide num_heads ({self.num_heads}), "
          f"got {self.num_kv_heads}"
      )
    if self.head_dim is None:
      if self.d_model % self.num_heads:
        raise ValueError(
            f"head_dim is None so d_model ({self.d_model}) must be divisible by num_heads "
            f"({self.num_heads})"
        )
      object.__setattr__(self, "head_dim", self.d_model // self.num_heads)
    if self.head_dim <= 0 or self.head_dim % 2:
      raise ValueError(f"head_dim must be a positive even int (RoPE), got {self.head_dim}")
    if self.norm not in NORMS:
      raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
    if not self.norm_eps > 0:
      raise ValueError(f"norm_eps must be positive, got {self.norm_eps}")
    for name in ("dyt_alpha_attn", "dyt_alpha_mlp", "dyt_alpha_final"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
    mixers = self.mixers
    if isinstance(mixers, str):
      mixers = (mixers,) * self.num_layers
    mixers = tuple(mixers)
    if len(mixers) != self.num_layers:
      raise ValueError(
          f"mixers must have num_layers ({self.num_layers}) entries, got {len(mixers)}"
      )
    for m in mixers:
      if m not in MIXERS:
        raise ValueError(f"mixers entries must be in {MIXERS}, got {m!r}")
    object.__setattr__(self, "mixers", mixers)
    if self.residual not in RESIDUALS:
      raise ValueError(f"residual must be one of {RESIDUALS}, got {self.residual!r}")
    if self.deep_delta_value not in ("constant", "linear"):
      raise ValueError(
          f"deep_delta_value must be 'constant' or 'linear', got {self.deep_delta_value!r}"
      )
    if not 0.0 <= self.deep_delta_beta_init <= 2.0:
      raise ValueError(f"deep_delta_beta_init must be in [0, 2], got {self.deep_delta_beta_init}")
    if not self.rope_theta > 0:
      raise ValueError(f"rope_theta must be positive, got {self.rope_theta}")
    if self.rope_scaling is not None and not isinstance(self.rope_scaling, RopeScaling):
      raise ValueError(f"rope_scaling must be a RopeScaling or None, got {self.rope_scaling!r}")
    if self.delta_conv_size < 1:
      raise ValueError(f"delta_conv_size must be >= 1, got {self.delta_conv_size}")
    if self.delta_chunk_size < 1:
      raise ValueError(f"delta_chunk_size must be >= 1, got {self.delta_chunk_size}")
    if self.delta_mode not in ("chunk", "recurrent"):
      raise ValueError(f"delta_mode must be 'chunk' or 'recurrent', got {self.delta_mode!r}")
    if not self.init_std > 0:
      raise ValueError(f"init_std must be positive, got {self.init_std}")


def _make_norm(cfg: TransformerConfig, alpha_init: float) -> RMSNorm | DyT:
  if cfg.norm == "rmsnorm":
    return RMSNorm(cfg.d_model, eps=cfg.norm_eps, dtype=cfg.dtype, param_dtype=cfg.param_dtype)
  return DyT(
      cfg.d_model, alpha_init=alpha_init, use_bias=cfg.dyt_bias, dtype=cfg.dtype,
      param_dtype=cfg.param_dtype,
  )


class MLP(nnx.Module):
  r"""SwiGLU feed-forward (Shazeer, 2020): y = W_down (silu(W_gate x) * (W_up x)).

  Args:
    d_model: D.
    mlp_dim: hidden width F.
    use_bias: biases on the three projections.
    dtype, param_dtype: computation and parameter dtypes.
    kernel_init: initializer of the kernels.
    rngs: parameter RNGs.
  """

  def __init__(
      self,
      d_model: int,
      mlp_dim: int,
      *,
      use_bias: bool = False,
      dtype: Any = jnp.float32,
      param_dtype: Any = jnp.float32,
      kernel_init: nnx.Initializer = _DEFAULT_INIT,
      rngs: nnx.Rngs,
  ):
    common = dict(use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    up_init = kernel_init
    self.gate_proj = nnx.Linear(d_model, mlp_dim, kernel_init=up_init, **common)
    self.up_proj = nnx.Linear(d_model, mlp_dim, kernel_init=up_init, **common)
    self.down_proj = nnx.Linear(
        mlp_dim, d_model, kernel_init=kernel_init, **common
    )

  def __call__(self, x_BTD: jax.Array) -> jax.Array:
    """``[B, T, D]`` -> ``[B, T, D]``."""
    return self.down_proj(jax.nn.silu(self.gate_proj(x_BTD)) * self.up_proj(x_BTD))


def _make_mixer(cfg: TransformerConfig, kind: str, rngs: nnx.Rngs) -> nnx.Module:
  init = nnx.initializers.normal(cfg.init_std)
  if kind == "attention":
    return Attention(
        cfg.d_model, num_heads=cfg.num_heads, num_kv_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim, rope_theta=cfg.rope_theta, rope_scaling=cfg.rope_scaling,
        qkv_bias=cfg.attention_bias, out_bias=cfg.attention_out_bias, qk_norm=cfg.qk_norm,
        norm_eps=cfg.norm_eps, dtype=cfg.dtype, param_dtype=cfg.param_dtype, kernel_init=init,
        rngs=rngs,
    )
  return _make_delta_mixer(cfg, kind, rngs)


def _make_delta_mixer(cfg: TransformerConfig, kind: str, rngs: nnx.Rngs) -> nnx.Module:
  cls = DeltaNet if kind == "deltanet" else GatedDeltaNet
  return cls(
      cfg.d_model, cfg.num_heads, cfg.head_dim, conv_size=cfg.delta_conv_size,
      use_output_gate=cfg.delta_output_gate, norm_eps=cfg.norm_eps,
      chunk_size=cfg.delta_chunk_size, mode=cfg.delta_mode, dtype=cfg.dtype,
      param_dtype=cfg.param_dtype, kernel_init=nnx.initializers.normal(cfg.init_std), rngs=rngs,
  )


class Block(nnx.Module):
  """Pre-norm decoder block: x += mixer(norm(x)); x += mlp(norm(x)) (or Deep Delta updates)."""

  def __init__(self, cfg: TransformerConfig, mixer: str, *, rngs: nnx.Rngs):
    self.mixer_kind = mixer
    self.mixer_norm = _make_norm(cfg, cfg.dyt_alpha_attn)
    self.mixer = _make_mixer(cfg, mixer, rngs)
    self.mlp_norm = _make_norm(cfg, cfg.dyt_alpha_mlp)
    self.mlp = MLP(
        cfg.d_model, cfg.mlp_dim, use_bias=cfg.mlp_bias, dtype=cfg.dtype,
        param_dtype=cfg.param_dtype, kernel_init=nnx.initializers.normal(cfg.init_std), rngs=rngs,
    )
    if cfg.residual == "deep_delta":
      self.mixer_residual, self.mlp_residual = _make_deep_delta(cfg, rngs), _make_deep_delta(
          cfg, rngs
      )
    else:
      self.mixer_residual, self.mlp_residual = None, None

  def __call__(
      self, x_BTD: jax.Array, *, positions_BT: jax.Array, mask_BT: jax.Array, cache: Any = None
  ) -> tuple[jax.Array, Any]:
    """One block; returns ``([B, T, D], the mixer's updated cache or None)``."""
    h_BTD = self.mixer_norm(x_BTD)
    if self.mixer_kind == "attention":
      h_BTD, cache = self.mixer(h_BTD, positions_BT=positions_BT, mask_BT=mask_BT, cache=cache)
    else:
      h_BTD, cache = self.mixer(h_BTD, mask_BT=mask_BT, cache=cache)
    x_BTD = _residual(self.mixer_residual, x_BTD, h_BTD)
    h_BTD = self.mlp(self.mlp_norm(x_BTD))
    return _residual(self.mlp_residual, x_BTD, h_BTD), cache


def _make_deep_delta(cfg: TransformerConfig, rngs: nnx.Rngs) -> DeepDelta:
  return DeepDelta(
      cfg.d_model, norm="rmsnorm", value=cfg.deep_delta_value,
      value_constant=cfg.deep_delta_value_constant, beta_init=cfg.deep_delta_beta_init,
      norm_eps=cfg.norm_eps, dtype=cfg.dtype, param_dtype=cfg.param_dtype, rngs=rngs,
  )


def _residual(module: nnx.Module | None, x_BTD: jax.Array, f_BTD: jax.Array) -> jax.Array:
  if module is None:
    return x_BTD + f_BTD.astype(x_BTD.dtype)
  return module(x_BTD, f_BTD).astype(x_BTD.dtype)


def _block_forward(block: Block, x_BTD, positions_BT, mask_BT):
  return block(x_BTD, positions_BT=positions_BT, mask_BT=mask_BT, cache=None)[0]


def default_positions(mask_BT: jax.Array) -> jax.Array:
  """Positions of a left-padded batch: ``clip(cumsum(mask) - 1, 0)``, ``[B, T]`` int32."""
  chex.assert_rank(mask_BT, 2)
  return jnp.maximum(jnp.cumsum(mask_BT.astype(jnp.int32), axis=1) - 1, 0)


class Transformer(nnx.Module):
  r"""Decoder-only LM: embed -> [pre-norm mixer + SwiGLU MLP] x L -> final norm -> LM head.

  Mixers per layer: causal GQA attention with RoPE (LLaMA / Qwen2 / Qwen3), DeltaNet or Gated
  DeltaNet (arXiv 2406.06484, 2412.06464); norms RMSNorm or DyT (arXiv 2503.10622); residual
  add or Deep Delta (arXiv 2601.00417). See :class:`TransformerConfig`.

  Args:
    config: the architecture.
    rngs: parameter RNGs.
  """

  def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
    cfg = config
    self.config = cfg
    self.embed = nnx.Embed(
        cfg.vocab_size, cfg.d_model, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
        embedding_init=nnx.initializers.normal(cfg.init_std),
        rngs=rngs,
    )
    if cfg.embedding_scale:
      self.embed_scale = nnx.Param(jnp.full((), math.sqrt(cfg.d_model), cfg.param_dtype))
    else:
      self.embed_scale = None
    self.layers = nnx.List([Block(cfg, m, rngs=rngs) for m in cfg.mixers])
    self.final_norm = _make_norm(cfg, cfg.dyt_alpha_final)
    if cfg.tie_embeddings:
      self.lm_head = None
    else:
      self.lm_head = nnx.Linear(
          cfg.d_model, cfg.vocab_size, use_bias=False, dtype=cfg.dtype,
          param_dtype=cfg.param_dtype,
          kernel_init=nnx.initializers.normal(cfg.init_std),
          rngs=rngs,
      )

  def forward_hidden(
      self,
      tokens_BT: jax.Array,
      positions: jax.Array | None = None,
      attention_mask: jax.Array | None = None,
      cache: tuple[Any, ...] | None = None,
  ) -> tuple[jax.Array, tuple[Any, ...] | None]:
    """Final hidden states (after the final norm), for a fused LM-head / log-prob kernel.

    Args:
      tokens_BT: ``[B, T]`` int token ids.
      positions: ``[B, T]`` int positions; default ``clip(cumsum(mask) - 1, 0)`` (= 0..T-1
        without padding). Required with a cache.
      attention_mask: ``[B, T]`` 1 = real token, 0 = padding (prompts are left-padded);
        padding never influences real positions. Default: all ones.
      cache: per-layer caches from :meth:`init_cache` (prefill or decode steps).

    Returns:
      ``(h [B, T, D] in the compute dtype, the updated cache or None when none was passed)``.
    """
    cfg = self.config
    chex.assert_rank(tokens_BT, 2)
    chex.assert_type(tokens_BT, int)
    b, t = tokens_BT.shape
    if attention_mask is None:
      mask_BT = jnp.ones((b, t), jnp.bool_)
    else:
      chex.assert_shape(attention_mask, (b, t))
      mask_BT = attention_mask.astype(jnp.bool_)
    if positions is None:
      if cache is not None:
        raise ValueError("positions must be given when a cache is passed (decode steps)")
      positions = default_positions(mask_BT)
    chex.assert_shape(positions, (b, t))
    positions = positions.astype(jnp.int32)
    if cache is not None and len(cache) != cfg.num_layers:
      raise ValueError(f"cache must have one entry per layer ({cfg.num_layers}), got {len(cache)}")

    x_BTD = self.embed(tokens_BT).astype(cfg.dtype)
    if self.embed_scale is not None:
      x_BTD = x_BTD * self.embed_scale[...].astype(cfg.dtype)
    new_cache = []
    for i, block in enumerate(self.layers):
      if cache is None:
        if cfg.remat:
          x_BTD = nnx.remat(_block_forward)(block, x_BTD, positions, mask_BT)
        else:
          x_BTD = _block_forward(block, x_BTD, positions, mask_BT)
      else:
        x_BTD, layer_cache = block(x_BTD, positions_BT=positions, mask_BT=mask_BT, cache=cache[i])
        new_cache.append(layer_cache)
    h_BTD = self.final_norm(x_BTD)
    return h_BTD, (tuple(new_cache) if cache is not None else None)

  def lm_head_kernel(self) -> jax.Array:
    """The LM head ``W [D, V]`` (the embedding transposed when tied), in the parameter dtype."""
    if self.lm_head is None:
      return self.embed.embedding[...].T
    return self.lm_head.kernel[...]

  def logits(self, h_BTD: jax.Array) -> jax.Array:
    """fp32 logits ``h @ lm_head_kernel()``: ``[B, T, D]`` -> ``[B, T, V]``."""
    chex.assert_rank(h_BTD, 3)
    chex.assert_axis_dimension(h_BTD, 2, self.config.d_model)
    dtype = self.config.dtype
    return jnp.einsum(
        "BTD,DV->BTV", h_BTD.astype(dtype), self.lm_head_kernel().astype(dtype),
        preferred_element_type=jnp.float32,
    ).astype(jnp.float32)

  def __call__(
      self,
      tokens_BT: jax.Array,
      positions: jax.Array | None = None,
      attention_mask: jax.Array | None = None,
  ) -> jax.Array:
    """fp32 logits ``[B, T, V]`` of a full (cache-free) forward; see :meth:`forward_hidden`."""
    h_BTD, _ = self.forward_hidden(tokens_BT, positions, attention_mask)
    return self.logits(h_BTD)

  def init_cache(
      self, batch_size: int, max_len: int, dtype: Any = None
  ) -> tuple[Any, ...]:
    """Empty per-layer caches (a tuple pytree, not nnx state) for ``max_len`` tokens.

    Attention layers get a :class:`KVCache` with ``max_len`` slots (dtype: ``dtype`` or the
    compute dtype); delta-rule layers get their conv + fp32 recurrent state.
    """
    if batch_size <= 0 or max_len <= 0:
      raise ValueError(f"batch_size and max_len must be positive, got {batch_size}, {max_len}")
    caches = []
    for block in self.layers:
      if block.mixer_kind == "attention":
        caches.append(block.mixer.init_cache(batch_size, max_len, dtype))
      else:
        caches.append(block.mixer.init_cache(batch_size, dtype=dtype))
    return tuple(caches)

  def decode(
      self,
      tokens_BT: jax.Array,
      positions_BT: jax.Array,
      attention_mask_BT: jax.Array,
      cache: tuple[Any, ...],
  ) -> tuple[jax.Array, tuple[Any, ...]]:
    """Prefill (T = prompt length) or decode (T = 1) with a cache: ``(fp32 logits, cache)``."""
    if cache is None:
      raise ValueError("decode needs a cache; create one with init_cache")
    h_BTD, cache = self.forward_hidden(tokens_BT, positions_BT, attention_mask_BT, cache)
    return self.logits(h_BTD), cache
