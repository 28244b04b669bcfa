r"""Deep Delta Learning residual: a rank-1 delta update replacing ``x + f(x)`` (arXiv 2601.00417).

  x' = x + beta * k * (v - k^T x) = (I - beta k k^T) x + beta k v      (d_v = 1)

with ``k = f / max(||f||, eps)`` the L2-normalised sublayer output (attention / mixer or MLP),
``beta = 2 sigmoid(Linear(norm(x)))`` in [0, 2] (0: identity, 1: projection that replaces the
component of x along k by v, 2: reflection), and ``v`` a scalar per token.

This follows the authors' scalar-value code (``model/DDL-vdim1.py`` in
github.com/yifanzhang-pro/deep-delta-learning): the sublayer output is used as the direction
``k`` only; ``v`` is a constant (2.0 there, ``value="constant"``) or ``Linear(x)`` of the
un-normalised residual stream (``value="linear"``, optionally through a sigmoid);
beta's input is the pre-norm of x (the same norm the block applies before the sublayer; here
the module owns it). Deviation: beta's kernel is initialised to zeros (the authors use
PyTorch's default uniform init) so that beta starts at exactly ``beta_init`` (1.0) for every
token; its bias is ``logit(beta_init / 2)`` as in the authors' code, and gradients still reach
the kernel through ``norm(x)``.
"""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import nnx

_NORMS = ("rmsnorm", "none")
_VALUES = ("constant", "linear")


def delta_residual(
    x_BTD: jax.Array,
    f_BTD: jax.Array,
    beta_BT: jax.Array,
    v_BT: jax.Array,
    *,
    k_eps: float = 1e-6,
) -> jax.Array:
  r"""Deep Delta update ``x + beta k (v - k^T x)``, ``k = f / max(||f||, eps)``; math in fp32.

  Args:
    x_BTD: ``[B, T, D]`` residual stream.
    f_BTD: ``[B, T, D]`` sublayer output (its direction is k).
    beta_BT: ``[B, T]`` step size in [0, 2]; 0 returns ``x`` exactly.
    v_BT: ``[B, T]`` scalar value written along k.
    k_eps: lower bound on ``||f||`` (PyTorch ``F.normalize`` semantics).

  Returns:
    ``[B, T, D]`` updated stream in ``x_BTD.dtype``. Paper: arXiv 2601.00417.
  """
  chex.assert_rank([x_BTD, f_BTD, beta_BT, v_BT], [3, 3, 2, 2])
  chex.assert_equal_shape([x_BTD, f_BTD])
  chex.assert_equal_shape([beta_BT, v_BT])
  chex.assert_equal_shape_prefix([x_BTD, beta_BT], 2)
  x = x_BTD.astype(jnp.float32)
  f = f_BTD.astype(jnp.float32)
  # max(||f||, eps) written as sqrt(max(sum f^2, eps^2)): finite gradient at f = 0.
  k = f * jax.lax.rsqrt(jnp.maximum(jnp.sum(f * f, axis=-1, keepdims=True), k_eps**2))
  proj = jnp.sum(k * x, axis=-1, keepdims=True)  # k^T x, [B, T, 1]
  delta = beta_BT.astype(jnp.float32)[..., None] * (v_BT.astype(jnp.float32)[..., None] - proj)
  return (x + delta * k).astype(x_BTD.dtype)


def _logit(p: float) -> float:
  p = min(max(float(p), 1e-6), 1.0 - 1e-6)
  return math.log(p) - math.log1p(-p)


class DeepDelta(nnx.Module):
  r"""Deep Delta residual ``x + beta k (v - k^T x)`` with learned beta (and optionally v).

  ``beta = 2 sigmoid(norm(x) w_beta + b_beta)`` in [0, 2], initialised at ``beta_init`` (1.0:
  kernel zeros, bias ``logit(beta_init / 2)``); ``k`` = L2-normalised sublayer output;
  ``v = value_constant`` (``value="constant"``) or ``x w_v + b_v`` (``value="linear"``, with
  ``sigmoid`` if ``value_sigmoid``). See the module docstring for the choices vs the paper.

  Args:
    d_model: D.
    norm: "rmsnorm" (a learnable-scale RMSNorm of x feeds beta) or "none" (x itself).
    value: "constant" or "linear".
    value_constant: the constant v (2.0, the authors' default).
    value_sigmoid: squash the linear v through a sigmoid.
    beta_init: beta at initialisation, in [0, 2].
    norm_eps: RMSNorm epsilon.
    k_eps: lower bound on the sublayer output's norm.
    dtype: compute dtype of the beta / value projections (the update itself is fp32).
    param_dtype: parameter dtype.
    rngs: ``nnx.Rngs``.

  Paper: Deep Delta Learning, arXiv 2601.00417.
  """

  def __init__(
      self,
      d_model: int,
      *,
      norm: str = "rmsnorm",
      value: str = "constant",
      value_constant: float = 2.0,
      value_sigmoid: bool = False,
      beta_init: float = 1.0,
      norm_eps: float = 1e-6,
      k_eps: float = 1e-6,
      dtype: Any = jnp.float32,
      param_dtype: Any = jnp.float32,
      rngs: nnx.Rngs,
  ):
    if not isinstance(d_model, int) or d_model < 1:
      raise ValueError(f"d_model must be a positive int, got {d_model!r}")
    if norm not in _NORMS:
      raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    if value not in _VALUES:
      raise ValueError(f"value must be one of {_VALUES}, got {value!r}")
    if not 0.0 <= beta_init <= 2.0:
      raise ValueError(f"beta_init must be in [0, 2], got {beta_init}")
    self.d_model, self.norm, self.value = d_model, norm, value
    self.value_constant, self.value_sigmoid = float(value_constant), value_sigmoid
    self.norm_eps, self.k_eps, self.dtype = norm_eps, k_eps, dtype
    if norm == "rmsnorm":
      self.norm_scale = nnx.Param(jnp.ones((d_model,), param_dtype))
    self.beta_proj = nnx.Linear(
        d_model, 1, use_bias=True, dtype=dtype, param_dtype=param_dtype,
        kernel_init=nnx.initializers.zeros_init(),
        bias_init=nnx.initializers.constant(_logit(beta_init / 2.0)), rngs=rngs,
    )
    if value == "linear":
      self.v_proj = nnx.Linear(
          d_model, 1, use_bias=True, dtype=dtype, param_dtype=param_dtype, rngs=rngs
      )

  def beta(self, x_BTD: jax.Array) -> jax.Array:
    """``2 sigmoid(Linear(norm(x)))``, ``[B, T]`` fp32 in [0, 2]."""
    h = x_BTD.astype(jnp.float32)
    if self.norm == "rmsnorm":
      h = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + self.norm_eps)
      h = h * self.norm_scale[...].astype(jnp.float32)[None, None, :]
    logits = self.beta_proj(h.astype(self.dtype)).astype(jnp.float32)[..., 0]
    return 2.0 * jax.nn.sigmoid(logits)

  def v(self, x_BTD: jax.Array) -> jax.Array:
    """The scalar value per token, ``[B, T]`` fp32."""
    if self.value == "constant":
      return jnp.full(x_BTD.shape[:2], self.value_constant, jnp.float32)
    v = self.v_proj(x_BTD.astype(self.dtype)).astype(jnp.float32)[..., 0]
    return jax.nn.sigmoid(v) if self.value_sigmoid else v

  def __call__(self, x_BTD: jax.Array, f_BTD: jax.Array) -> jax.Array:
    """``x + beta k (v - k^T x)``: residual ``x_BTD``, sublayer output ``f_BTD``, both [B, T, D]."""
    chex.assert_rank([x_BTD, f_BTD], 3)
    if x_BTD.shape[-1] != self.d_model:
      raise ValueError(f"x_BTD last axis must be d_model={self.d_model}, got {x_BTD.shape[-1]}")
    return delta_residual(x_BTD, f_BTD, self.beta(x_BTD), self.v(x_BTD), k_eps=self.k_eps)
