"""Causal grouped-query self-attention with RoPE and a KV cache (LLaMA / Qwen2 / Qwen3 style)."""

from __future__ import annotations

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from rljax.models._norms import RMSNorm

_DEFAULT_INIT = nnx.initializers.normal(0.02)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RopeScaling:
  """RoPE frequency scaling, Hugging Face ``rope_parameters`` / ``rope_scaling`` semantics.

  ``kind="linear"`` divides every inverse frequency by ``factor`` (position interpolation);
  ``kind="llama3"`` divides the low frequencies by ``factor``, keeps the high ones and
  interpolates in between (LLaMA 3.1).
  """

  kind: str = "linear"                      # "linear" | "llama3"
  factor: float = 1.0
  low_freq_factor: float = 1.0              # llama3 only
  high_freq_factor: float = 4.0             # llama3 only
  original_max_position_embeddings: int = 8192  # llama3 only

  def __post_init__(self):
    if self.kind not in ("linear", "llama3"):
      raise ValueError(f"kind must be 'linear' or 'llama3', got {self.kind!r}")
    if not self.factor > 0:
      raise ValueError(f"factor must be positive, got {self.factor}")
    if self.kind == "llama3" and not self.high_freq_factor > self.low_freq_factor:
      raise ValueError(
          f"high_freq_factor ({self.high_freq_factor}) must exceed low_freq_factor "
          f"({self.low_freq_factor})"
      )


def rope_inverse_frequencies(
    head_dim: int, *, theta: float, scaling: RopeScaling | None = None
) -> np.ndarray:
  r"""RoPE inverse frequencies ``inv_freq[i] = theta^(-2i / Dh)``, i < Dh / 2, optionally scaled.

  Args:
    head_dim: Dh (even).
    theta: the RoPE base.
    scaling: optional frequency scaling (see :class:`RopeScaling`).

  Returns:
    ``[Dh / 2]`` float32 numpy array (a compile-time constant).
  """
  if head_dim % 2:
    raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
  inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
  inv_freq = inv_freq.astype(np.float32)
  if scaling is None:
    return inv_freq
  if scaling.kind == "linear":
    return (inv_freq / scaling.factor).astype(np.float32)
  # llama3
  old_len = scaling.original_max_position_embeddings
  low_wavelen = old_len / scaling.low_freq_factor
  high_wavelen = old_len / scaling.high_freq_factor
  wavelen = 2 * math.pi / inv_freq
  inv = np.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
  smooth = (old_len / wavelen - scaling.low_freq_factor) / (
      scaling.high_freq_factor - scaling.low_freq_factor
  )
  smoothed = (1 - smooth) * inv / scaling.factor + smooth * inv
  medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
  return np.where(medium, smoothed, inv).astype(np.float32)


def apply_rope(x_BTHD: jax.Array, positions_BT: jax.Array, inv_freq: np.ndarray) -> jax.Array:
  r"""Rotary position embedding, Hugging Face "rotate_half" layout.

  angle[t, i] = pos_t * inv_freq[i];  cos/sin tiled as [angle, angle] over Dh;
  y = x * cos + rotate_half(x) * sin,  rotate_half([x1, x2]) = [-x2, x1]   (Su et al., 2021).

  Args:
    x_BTHD: ``[B, T, H, Dh]`` queries or keys.
    positions_BT: ``[B, T]`` integer positions.
    inv_freq: ``[Dh / 2]`` inverse frequencies (:func:`rope_inverse_frequencies`).

  Returns:
    ``[B, T, H, Dh]`` in the dtype of ``x_BTHD`` (angles computed in fp32).
  """
  chex.assert_rank(x_BTHD, 4)
  chex.assert_rank(positions_BT, 2)
  chex.assert_equal_shape_prefix([x_BTHD, positions_BT], 2)
  chex.assert_axis_dimension(x_BTHD, 3, 2 * inv_freq.shape[0])
  angles_BTK = positions_BT.astype(jnp.float32)[:, :, None] * jnp.asarray(inv_freq)[None, None, :]
  angles_BTD = jnp.concatenate([angles_BTK, angles_BTK], axis=-1)
  cos = jnp.cos(angles_BTD)[:, :, None, :].astype(x_BTHD.dtype)  # [B, T, 1, Dh]
  sin = jnp.sin(angles_BTD)[:, :, None, :].astype(x_BTHD.dtype)
  x1, x2 = jnp.split(x_BTHD, 2, axis=-1)
  rotated = jnp.concatenate([-x2, x1], axis=-1)
  return x_BTHD * cos + rotated * sin


@struct.dataclass
class KVCache:
  """Per-layer attention cache (a pytree; carry it through jit / ``lax.while_loop``).

  The slots axis L is laid out where a T = 1 decode step's two attention contractions read
  it in place: keys ``[B, Hkv, L, Dh]`` (``q . k`` contracts the minor Dh) and values
  ``[B, Hkv, Dh, L]`` (``p . v`` contracts the minor L). With the ``[B, L, Hkv, Dh]`` layout of
  the projections XLA:CPU copied the whole cache into these layouts at every decode step: about
  half a rollout's time for the experiments' 2 x 64 policies (``benchmarks/rollout.py
  --presets small``: 11,000 -> 21,200 tok/s), with the same tokens and log-probs bit for bit.

  Attributes:
    k: ``[B, Hkv, L, Dh]`` keys (after RoPE).
    v: ``[B, Hkv, Dh, L]`` values.
    mask: ``[B, L]`` bool, True where the slot holds a real (non-padding) token.
    index: ``[]`` int32, the next slot to write (shared by all rows: prompts are aligned).
  """

  k: jax.Array
  v: jax.Array
  mask: jax.Array
  index: jax.Array

  @classmethod
  def zeros(
      cls, batch_size: int, max_len: int, num_kv_heads: int, head_dim: int, dtype: jnp.dtype
  ) -> KVCache:
    """An empty cache with ``max_len`` slots."""
    return cls(
        k=jnp.zeros((batch_size, num_kv_heads, max_len, head_dim), dtype),
        v=jnp.zeros((batch_size, num_kv_heads, head_dim, max_len), dtype),
        mask=jnp.zeros((batch_size, max_len), jnp.bool_),
        index=jnp.zeros((), jnp.int32),
    )


# einsum operand layouts of the keys and values: the projections' and the KVCache's.
_KV_LAYOUTS = {"BSKD": ("BSKD", "BSKD"), "cache": ("BKSD", "BKDS")}


def dot_product_attention(
    q_BTHD: jax.Array, k: jax.Array, v: jax.Array, allowed_BTS: jax.Array, *,
    kv_layout: str = "BSKD",
) -> jax.Array:
  r"""Grouped-query softmax attention with a boolean mask (scores and softmax in fp32).

  o_t = sum_s softmax_s(q_t . k_s / sqrt(Dh), masked) v_s; query head h reads kv head
  h // (H / K). Masked scores are set to the fp32 minimum (not -inf) and masked probabilities
  to 0 after the softmax, so a fully masked row (a padding query) outputs zeros, not NaN.

  Args:
    q_BTHD: ``[B, T, H, Dh]`` queries.
    k: keys, ``[B, S, K, Dh]`` (K divides H), or ``[B, K, S, Dh]`` with ``kv_layout="cache"``.
    v: values, ``[B, S, K, Dh]``, or ``[B, K, Dh, S]`` with ``kv_layout="cache"``.
    allowed_BTS: ``[B, T, S]`` bool, True where query t may attend to key s.
    kv_layout: ``"BSKD"`` (the projections' layout) or ``"cache"`` (:class:`KVCache`'s).

  Returns:
    ``[B, T, H, Dh]`` in the dtype of ``q_BTHD``.
  """
  if kv_layout not in _KV_LAYOUTS:
    raise ValueError(f"kv_layout must be one of {sorted(_KV_LAYOUTS)}, got {kv_layout!r}")
  k_spec, v_spec = _KV_LAYOUTS[kv_layout]
  chex.assert_rank([q_BTHD, k, v, allowed_BTS], [4, 4, 4, 3])
  b, t, h, d = q_BTHD.shape
  s, kv = k.shape[k_spec.index("S")], k.shape[k_spec.index("K")]
  size = {"B": b, "S": s, "K": kv, "D": d}
  chex.assert_shape(k, tuple(size[c] for c in k_spec))
  chex.assert_shape(v, tuple(size[c] for c in v_spec))
  if h % kv:
    raise ValueError(f"num_heads ({h}) must be a multiple of num_kv_heads ({kv})")
  chex.assert_shape(allowed_BTS, (b, t, s))
  q_BTKGD = q_BTHD.reshape(b, t, kv, h // kv, d)
  scores_BKGTS = jnp.einsum(
      f"BTKGD,{k_spec}->BKGTS", q_BTKGD, k, preferred_element_type=jnp.float32
  ) * (1.0 / math.sqrt(d))
  mask_BKGTS = allowed_BTS[:, None, None, :, :]
  scores_BKGTS = jnp.where(mask_BKGTS, scores_BKGTS, jnp.finfo(jnp.float32).min)
  probs_BKGTS = jax.nn.softmax(scores_BKGTS, axis=-1)
  probs_BKGTS = jnp.where(mask_BKGTS, probs_BKGTS, 0.0).astype(v.dtype)
  o_BTKGD = jnp.einsum(f"BKGTS,{v_spec}->BTKGD", probs_BKGTS, v)
  return o_BTKGD.reshape(b, t, h, d).astype(q_BTHD.dtype)


class Attention(nnx.Module):
  r"""Causal multi-head / grouped-query self-attention with RoPE and an optional KV cache.

  q = x Wq (+ bq), k = x Wk (+ bk), v = x Wv (+ bv); optional per-head RMSNorm on q and k
  (Qwen3, before RoPE); RoPE on q, k; softmax(q k^T / sqrt(Dh) + causal and padding mask) v;
  y = o Wo (+ bo). GQA (Ainslie et al., 2023): K kv heads shared by H / K query heads each.

  Args:
    d_model: D.
    num_heads: H query heads.
    num_kv_heads: K key/value heads (divides H).
    head_dim: Dh (even).
    rope_theta: RoPE base.
    rope_scaling: optional :class:`RopeScaling`.
    qkv_bias: biases on the q/k/v projections (Qwen2; LLaMA ``attention_bias``).
    out_bias: bias on the output projection (LLaMA / Qwen3 ``attention_bias``).
    qk_norm: per-head RMSNorm on q and k (Qwen3).
    norm_eps: epsilon of the q/k norms.
    dtype, param_dtype: computation and parameter dtypes.
    kernel_init: initializer of the projection kernels.
    rngs: parameter RNGs.
  """

  def __init__(
      self,
      d_model: int,
      *,
      num_heads: int,
      num_kv_heads: int,
      head_dim: int,
      rope_theta: float = 10_000.0,
      rope_scaling: RopeScaling | None = None,
      qkv_bias: bool = False,
      out_bias: bool = False,
      qk_norm: bool = False,
      norm_eps: float = 1e-6,
      dtype: jnp.dtype = jnp.float32,
      param_dtype: jnp.dtype = jnp.float32,
      kernel_init: nnx.Initializer = _DEFAULT_INIT,
      rngs: nnx.Rngs,
  ):
    if num_heads % num_kv_heads:
      raise ValueError(
          f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})"
      )
    self.num_heads = num_heads
    self.num_kv_heads = num_kv_heads
    self.head_dim = head_dim
    self.dtype = dtype
    rope_inverse_frequencies(head_dim, theta=rope_theta, scaling=rope_scaling)  # validates
    self.rope_theta = rope_theta
    self.rope_scaling = rope_scaling
    common = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.q_proj = nnx.Linear(
        d_model, num_heads * head_dim, use_bias=qkv_bias,
        kernel_init=kernel_init, **common,
    )
    self.k_proj = nnx.Linear(
        d_model, num_kv_heads * head_dim, use_bias=qkv_bias,
        kernel_init=kernel_init, **common,
    )
    self.v_proj = nnx.Linear(
        d_model, num_kv_heads * head_dim, use_bias=qkv_bias,
        kernel_init=kernel_init, **common,
    )
    self.o_proj = nnx.Linear(
        num_heads * head_dim, d_model, use_bias=out_bias,
        kernel_init=kernel_init, **common,
    )
    if qk_norm:
      self.q_norm = RMSNorm(head_dim, eps=norm_eps, dtype=dtype, param_dtype=param_dtype)
      self.k_norm = RMSNorm(head_dim, eps=norm_eps, dtype=dtype, param_dtype=param_dtype)
    else:
      self.q_norm = None
      self.k_norm = None

  def init_cache(self, batch_size: int, max_len: int, dtype: jnp.dtype | None = None) -> KVCache:
    """An empty :class:`KVCache` with ``max_len`` slots (dtype defaults to the compute dtype)."""
    return KVCache.zeros(
        batch_size, max_len, self.num_kv_heads, self.head_dim, dtype or self.dtype
    )

  def __call__(
      self,
      x_BTD: jax.Array,
      *,
      positions_BT: jax.Array,
      mask_BT: jax.Array | None = None,
      cache: KVCache | None = None,
  ) -> tuple[jax.Array, KVCache | None]:
    """Self-attention over ``x_BTD`` (and the cached keys when ``cache`` is given).

    Args:
      x_BTD: ``[B, T, D]`` inputs.
      positions_BT: ``[B, T]`` RoPE positions.
      mask_BT: ``[B, T]`` 1 for real tokens, 0 for padding (keys at padding are masked).
      cache: optional :class:`KVCache`; the T new keys/values are written at slots
        ``[index, index + T)`` (the caller keeps ``index + T <= L``) and queries attend to
        every valid slot up to their own.

    Returns:
      ``([B, T, D] outputs, the updated cache or None)``.
    """
    chex.assert_rank([x_BTD, positions_BT], [3, 2])
    b, t, _ = x_BTD.shape
    chex.assert_shape(positions_BT, (b, t))
    if mask_BT is None:
      mask_BT = jnp.ones((b, t), jnp.bool_)
    chex.assert_shape(mask_BT, (b, t))
    mask_BT = mask_BT.astype(jnp.bool_)
    x_BTD = x_BTD.astype(self.dtype)
    q_BTHD = self.q_proj(x_BTD).reshape(b, t, self.num_heads, self.head_dim)
    k_BTKD = self.k_proj(x_BTD).reshape(b, t, self.num_kv_heads, self.head_dim)
    v_BTKD = self.v_proj(x_BTD).reshape(b, t, self.num_kv_heads, self.head_dim)
    if self.q_norm is not None:
      q_BTHD = self.q_norm(q_BTHD)
      k_BTKD = self.k_norm(k_BTKD)
    inv_freq = rope_inverse_frequencies(
        self.head_dim, theta=self.rope_theta, scaling=self.rope_scaling
    )
    q_BTHD = apply_rope(q_BTHD, positions_BT, inv_freq)
    k_BTKD = apply_rope(k_BTKD, positions_BT, inv_freq)

    query_slot_T = jnp.arange(t, dtype=jnp.int32)
    if cache is None:
      k_all, v_all, kmask_BS, key_slot_S = k_BTKD, v_BTKD, mask_BT, query_slot_T
      new_cache = None
    else:
      chex.assert_rank(cache.k, 4)
      index = cache.index
      k_BKTD = jnp.transpose(k_BTKD, (0, 2, 1, 3)).astype(cache.k.dtype)
      v_BKDT = jnp.transpose(v_BTKD, (0, 2, 3, 1)).astype(cache.v.dtype)
      k_BKSD = jax.lax.dynamic_update_slice(cache.k, k_BKTD, (0, 0, index, 0))
      v_BKDS = jax.lax.dynamic_update_slice(cache.v, v_BKDT, (0, 0, 0, index))
      kmask_BS = jax.lax.dynamic_update_slice(cache.mask, mask_BT, (0, index))
      key_slot_S = jnp.arange(cache.k.shape[2], dtype=jnp.int32)
      query_slot_T = query_slot_T + index
      new_cache = KVCache(k=k_BKSD, v=v_BKDS, mask=kmask_BS, index=index + t)
    causal_TS = key_slot_S[None, :] <= query_slot_T[:, None]
    allowed_BTS = causal_TS[None, :, :] & kmask_BS[:, None, :]
    if cache is None:
      o_BTHD = dot_product_attention(q_BTHD, k_all, v_all, allowed_BTS)
    else:
      o_BTHD = dot_product_attention(q_BTHD, k_BKSD.astype(self.dtype),
                                     v_BKDS.astype(self.dtype), allowed_BTS, kv_layout="cache")
    y_BTD = self.o_proj(o_BTHD.reshape(b, t, self.num_heads * self.head_dim))
    return y_BTD, new_cache
