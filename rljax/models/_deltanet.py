r"""DeltaNet and Gated DeltaNet token mixers (Flax NNX), with a decoding cache.

Per head h (``Dk = Dv = head_dim``):

  q, k, v = SiLU(causal_depthwise_conv(x W_q)), ... (kernel ``conv_size``, one conv per stream)
  q, k <- x / sqrt(sum x^2 + 1e-6)                       (L2 normalisation per head)
  beta = sigmoid(x W_beta)                                ([B, T, H])
  g = -exp(A_log) softplus(x W_a + dt_bias)               (Gated DeltaNet only; g <= 0)
  o = delta_rule(q, k, v, beta, g)                        (see ``_delta_rule``; q scaled by Dk^-1/2
                                                           inside the delta rule)
  o <- RMSNorm_per_head(o) * silu(x W_gate)               (the gate if ``use_output_gate``)
  y = o W_out

Padding (``mask_BT`` 0, prompts left-padded) is a no-op: the pre-conv projected input is zeroed,
``beta = 0`` and ``g = 0``, so the state and the conv window at the first real token are the same
as for the unpadded row. The cache is a plain dict pytree ``{"conv": [B, conv_size - 1, C],
"state": [B, H, Dk, Dv] fp32}`` with ``C = 2 H Dk + H Dv`` (the q, k, v pre-conv inputs of the
last ``conv_size - 1`` tokens, concatenated in that order).

Initialisation follows the fla / official Gated DeltaNet code: ``A = U(0, 16)``,
``A_log = log A``; ``dt`` log-uniform in [1e-3, 1e-1] (floored at 1e-4) and ``dt_bias`` its
inverse softplus; conv kernels ``U(-1/sqrt(conv_size), 1/sqrt(conv_size))`` (PyTorch's Conv1d
default for a depthwise conv); norm weights ones.

Papers: arXiv 2406.06484 (DeltaNet), arXiv 2412.06464 (Gated DeltaNet).
"""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from rljax.models._delta_rule import delta_rule_chunkwise, delta_rule_recurrent, delta_rule_step

_MODES = ("chunk", "recurrent")
_QK_NORM_EPS = 1e-6


def _l2_normalize(x: jax.Array) -> jax.Array:
  """``x / sqrt(sum(x^2) + 1e-6)`` over the last axis, in fp32."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + _QK_NORM_EPS)


def _causal_depthwise_conv(xs_BSC: jax.Array, w_KC: jax.Array) -> jax.Array:
  """``y_t = sum_i w_i xs_{t + i}``, ``xs = [K - 1 previous inputs; T new]``; ``[B, T, C]``."""
  kernel = w_KC.shape[0]
  t = xs_BSC.shape[1] - (kernel - 1)
  xs = xs_BSC
  w = w_KC.astype(xs.dtype)
  y = xs[:, 0:t] * w[0][None, None, :]
  for i in range(1, kernel):
    y = y + xs[:, i : i + t] * w[i][None, None, :]
  return y


def _conv_init(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
  bound = 1.0 / math.sqrt(shape[0])
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class _DeltaMixer(nnx.Module):
  """Shared implementation of :class:`DeltaNet` (``gated=False``) and :class:`GatedDeltaNet`."""

  gated: bool = False

  def __init__(
      self,
      d_model: int,
      num_heads: int,
      head_dim: int,
      *,
      conv_size: int = 4,
      use_output_gate: bool = True,
      norm_eps: float = 1e-6,
      chunk_size: int = 64,
      mode: str = "chunk",
      dtype: Any = jnp.float32,
      param_dtype: Any = jnp.float32,
      kernel_init: nnx.Initializer | None = None,
      rngs: nnx.Rngs,
  ):
    for name, value in (
        ("d_model", d_model), ("num_heads", num_heads), ("head_dim", head_dim),
        ("conv_size", conv_size), ("chunk_size", chunk_size),
    ):
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if mode not in _MODES:
      raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    self.d_model, self.num_heads, self.head_dim = d_model, num_heads, head_dim
    self.conv_size, self.use_output_gate, self.norm_eps = conv_size, use_output_gate, norm_eps
    self.chunk_size, self.mode, self.dtype = chunk_size, mode, dtype
    hd = num_heads * head_dim
    lin_kw: dict[str, Any] = dict(use_bias=False, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    if kernel_init is not None:
      lin_kw["kernel_init"] = kernel_init
    self.q_proj = nnx.Linear(d_model, hd, **lin_kw)
    self.k_proj = nnx.Linear(d_model, hd, **lin_kw)
    self.v_proj = nnx.Linear(d_model, hd, **lin_kw)
    self.b_proj = nnx.Linear(d_model, num_heads, **lin_kw)
    self.q_conv = nnx.Param(_conv_init(rngs.params(), (conv_size, hd), param_dtype))
    self.k_conv = nnx.Param(_conv_init(rngs.params(), (conv_size, hd), param_dtype))
    self.v_conv = nnx.Param(_conv_init(rngs.params(), (conv_size, hd), param_dtype))
    if self.gated:
      self.a_proj = nnx.Linear(d_model, num_heads, **lin_kw)
      a = jax.random.uniform(rngs.params(), (num_heads,), jnp.float32, 0.0, 16.0)
      self.A_log = nnx.Param(jnp.log(jnp.maximum(a, 1e-4)).astype(param_dtype))
      u = jax.random.uniform(rngs.params(), (num_heads,), jnp.float32)
      dt = jnp.exp(u * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
      dt = jnp.maximum(dt, 1e-4)
      self.dt_bias = nnx.Param((dt + jnp.log(-jnp.expm1(-dt))).astype(param_dtype))
    if use_output_gate:
      self.g_proj = nnx.Linear(d_model, hd, **lin_kw)
    self.o_norm_scale = nnx.Param(jnp.ones((head_dim,), param_dtype))
    self.o_proj = nnx.Linear(hd, d_model, **lin_kw)

  def init_cache(self, batch_size: int, dtype: Any = None) -> dict[str, jax.Array]:
    """Empty cache: zero conv window ``[B, conv_size - 1, 3 H Dh]`` and zero state (fp32)."""
    hd = self.num_heads * self.head_dim
    conv_dtype = self.dtype if dtype is None else dtype
    return {
        "conv": jnp.zeros((batch_size, self.conv_size - 1, 3 * hd), conv_dtype),
        "state": jnp.zeros((batch_size, self.num_heads, self.head_dim, self.head_dim), jnp.float32),
    }

  def __call__(
      self,
      x_BTD: jax.Array,
      *,
      mask_BT: jax.Array | None = None,
      cache: dict[str, jax.Array] | None = None,
  ) -> tuple[jax.Array, dict[str, jax.Array] | None]:
    """Mix tokens causally; with ``cache``, continue from it (prefill or decode steps).

    Args:
      x_BTD: ``[B, T, D]`` input (already normed by the block).
      mask_BT: ``[B, T]`` 1 = real token, 0 = padding (a no-op step); None = all real.
      cache: None for a full-sequence forward, or a cache from :meth:`init_cache` / a
        previous call; the T new tokens follow the cached ones.

    Returns:
      ``(y [B, T, D] in the compute dtype, the updated cache, or None when none was given)``.
    """
    chex.assert_rank(x_BTD, 3)
    b, t, d = x_BTD.shape
    if d != self.d_model:
      raise ValueError(f"x_BTD last axis must be d_model={self.d_model}, got {d}")
    h, dh = self.num_heads, self.head_dim
    hd = h * dh
    x_BTD = x_BTD.astype(self.dtype)
    if mask_BT is not None:
      chex.assert_shape(mask_BT, (b, t))
      m_BT = mask_BT.astype(jnp.bool_)
    else:
      m_BT = None

    # Projections, masked before the conv so padded tokens never enter a conv window.
    qkv_BTC = jnp.concatenate([self.q_proj(x_BTD), self.k_proj(x_BTD), self.v_proj(x_BTD)], -1)
    if m_BT is not None:
      qkv_BTC = jnp.where(m_BT[..., None], qkv_BTC, jnp.zeros((), qkv_BTC.dtype))
    if cache is None:
      conv_state = jnp.zeros((b, self.conv_size - 1, 3 * hd), qkv_BTC.dtype)
    else:
      chex.assert_shape(cache["conv"], (b, self.conv_size - 1, 3 * hd))
      conv_state = cache["conv"]
    w_KC = jnp.concatenate([self.q_conv[...], self.k_conv[...], self.v_conv[...]], axis=-1)
    window_BSC = jnp.concatenate([conv_state.astype(qkv_BTC.dtype), qkv_BTC], axis=1)
    qkv_BTC = jax.nn.silu(_causal_depthwise_conv(window_BSC, w_KC))
    q_BTHK = _l2_normalize(qkv_BTC[..., :hd].reshape(b, t, h, dh))
    k_BTHK = _l2_normalize(qkv_BTC[..., hd : 2 * hd].reshape(b, t, h, dh))
    v_BTHV = qkv_BTC[..., 2 * hd :].reshape(b, t, h, dh).astype(jnp.float32)

    beta_BTH = jax.nn.sigmoid(self.b_proj(x_BTD).astype(jnp.float32))
    g_BTH = None
    if self.gated:
      dt_bias_11H = self.dt_bias[...].astype(jnp.float32)[None, None, :]
      a_log_11H = self.A_log[...].astype(jnp.float32)[None, None, :]
      a_BTH = self.a_proj(x_BTD).astype(jnp.float32) + dt_bias_11H
      g_BTH = -jnp.exp(a_log_11H) * jax.nn.softplus(a_BTH)
    if m_BT is not None:
      beta_BTH = jnp.where(m_BT[..., None], beta_BTH, 0.0)
      if g_BTH is not None:
        g_BTH = jnp.where(m_BT[..., None], g_BTH, 0.0)

    s0 = None
    if cache is not None:
      chex.assert_shape(cache["state"], (b, h, dh, dh))
      s0 = cache["state"]
    if t == 1 and s0 is not None:
      o_BHV, s_final = delta_rule_step(
          q_BTHK[:, 0], k_BTHK[:, 0], v_BTHV[:, 0], beta_BTH[:, 0],
          None if g_BTH is None else g_BTH[:, 0], s0,
      )
      o_BTHV = o_BHV[:, None]
    elif self.mode == "chunk":
      o_BTHV, s_final = delta_rule_chunkwise(
          q_BTHK, k_BTHK, v_BTHV, beta_BTH, g_BTH, s0, chunk_size=self.chunk_size
      )
    else:
      o_BTHV, s_final = delta_rule_recurrent(q_BTHK, k_BTHK, v_BTHV, beta_BTH, g_BTH, s0)

    # Per-head RMSNorm (fp32), optional SiLU gate, output projection.
    o_BTHV = o_BTHV.astype(jnp.float32)
    o_BTHV = o_BTHV * jax.lax.rsqrt(jnp.mean(o_BTHV * o_BTHV, -1, keepdims=True) + self.norm_eps)
    o_BTHV = o_BTHV * self.o_norm_scale[...].astype(jnp.float32)[None, None, None, :]
    if self.use_output_gate:
      gate_BTHV = self.g_proj(x_BTD).astype(jnp.float32).reshape(b, t, h, dh)
      o_BTHV = o_BTHV * jax.nn.silu(gate_BTHV)
    y_BTD = self.o_proj(o_BTHV.reshape(b, t, hd).astype(self.dtype))

    new_cache = None
    if cache is not None:
      new_cache = {
          "conv": window_BSC[:, t:].astype(cache["conv"].dtype),  # the last conv_size - 1
          "state": s_final,
      }
    return y_BTD, new_cache


class DeltaNet(_DeltaMixer):
  r"""DeltaNet token mixer (arXiv 2406.06484): the delta rule with short convs and gated output.

  S_t = S_{t-1} + k_t (beta_t (v_t - S_{t-1}^T k_t))^T,  o_t = S_t^T q_t / sqrt(Dk);
  see the module docstring for the projections, conv, norms and cache.

  Args:
    d_model: D, input / output width.
    num_heads: H.
    head_dim: Dk = Dv per head.
    conv_size: causal depthwise short-conv kernel (4).
    use_output_gate: gate the per-head output RMSNorm with ``silu(x W_gate)``.
    norm_eps: epsilon of the per-head output RMSNorm.
    chunk_size: C of the chunkwise form (64).
    mode: "chunk" (WY/UT chunkwise, training and prefill) or "recurrent" (``lax.scan``).
    dtype: compute dtype of the projections (the delta rule runs in fp32).
    param_dtype: parameter dtype.
    kernel_init: initializer of the linear kernels (None: flax's default).
    rngs: ``nnx.Rngs`` for the parameters.
  """

  gated = False


class GatedDeltaNet(_DeltaMixer):
  r"""Gated DeltaNet token mixer (arXiv 2412.06464): DeltaNet with a per-head decay.

  S_t = exp(g_t) S_{t-1} + k_t (beta_t (v_t - exp(g_t) S_{t-1}^T k_t))^T,
  g_t = -exp(A_log) softplus(x_t W_a + dt_bias);  same arguments as :class:`DeltaNet`.
  """

  gated = True
