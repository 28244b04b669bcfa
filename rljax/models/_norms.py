"""Normalisation layers: RMSNorm and DyT (Dynamic Tanh, arXiv 2503.10622)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import nnx


def _expand(w_D: jax.Array, ndim: int) -> jax.Array:
  """Reshapes a per-channel ``[D]`` vector to ``[1, ..., 1, D]`` (explicit rank promotion)."""
  return w_D.reshape((1,) * (ndim - 1) + w_D.shape)


class RMSNorm(nnx.Module):
  r"""Root-mean-square layer norm (Zhang & Sennrich, 2019), LLaMA / Qwen convention.

  y = scale * (x / sqrt(mean(x^2) + eps)), the normalisation in fp32, cast back to the input
  dtype before the (learnable, ones-initialised) scale, as Hugging Face LLaMA does.

  Args:
    num_features: D, the size of the normalised (last) axis.
    eps: added to the mean square.
    dtype: computation / output dtype (None: the input's).
    param_dtype: dtype of ``scale``.
    rngs: unused (the init is deterministic); accepted for a uniform layer signature.
  """

  def __init__(
      self,
      num_features: int,
      *,
      eps: float = 1e-6,
      dtype: jnp.dtype | None = None,
      param_dtype: jnp.dtype = jnp.float32,
      rngs: nnx.Rngs | None = None,
  ):
    del rngs
    if num_features <= 0:
      raise ValueError(f"num_features must be positive, got {num_features}")
    if eps <= 0:
      raise ValueError(f"eps must be positive, got {eps}")
    self.num_features = num_features
    self.eps = eps
    self.dtype = dtype
    self.scale = nnx.Param(jnp.ones((num_features,), param_dtype))

  def __call__(self, x: jax.Array) -> jax.Array:
    """Normalises ``x [..., D]`` over its last axis; returns ``[..., D]``."""
    chex.assert_axis_dimension(x, -1, self.num_features)
    dtype = self.dtype or x.dtype
    x32 = x.astype(jnp.float32)
    ms = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = (x32 * jax.lax.rsqrt(ms + self.eps)).astype(dtype)
    return _expand(self.scale[...].astype(dtype), y.ndim) * y


class DyT(nnx.Module):
  r"""Dynamic Tanh, a drop-in replacement for LayerNorm / RMSNorm (Zhu et al., arXiv 2503.10622).

  y = weight * tanh(alpha * x) + bias, with alpha a learnable *scalar* (init ``alpha_init``,
  0.5 by default; the LLaMA recipe uses separate inits for the pre-attention, pre-MLP and final
  norms, e.g. 0.8 / 0.2 / 0.2 at 7B), weight init ones and bias init zeros. The LLaMA variant
  drops the bias (``use_bias=False``). Exclude ``alpha`` (and weight / bias) from weight decay,
  see :func:`rljax.models.weight_decay_mask`.

  Args:
    num_features: D, the size of the last axis.
    alpha_init: initial value of the scalar alpha (> 0).
    use_bias: whether to add the learnable per-channel bias.
    dtype: computation / output dtype (None: the input's). tanh is evaluated in fp32.
    param_dtype: dtype of the parameters.
    rngs: unused (the init is deterministic); accepted for a uniform layer signature.
  """

  def __init__(
      self,
      num_features: int,
      *,
      alpha_init: float = 0.5,
      use_bias: bool = True,
      dtype: jnp.dtype | None = None,
      param_dtype: jnp.dtype = jnp.float32,
      rngs: nnx.Rngs | None = None,
  ):
    del rngs
    if num_features <= 0:
      raise ValueError(f"num_features must be positive, got {num_features}")
    if not alpha_init > 0:
      raise ValueError(f"alpha_init must be positive, got {alpha_init}")
    self.num_features = num_features
    self.use_bias = use_bias
    self.dtype = dtype
    self.alpha = nnx.Param(jnp.full((), alpha_init, param_dtype))
    self.weight = nnx.Param(jnp.ones((num_features,), param_dtype))
    self.bias = nnx.Param(jnp.zeros((num_features,), param_dtype)) if use_bias else None

  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies ``weight * tanh(alpha * x) + bias`` to ``x [..., D]``; returns ``[..., D]``."""
    chex.assert_axis_dimension(x, -1, self.num_features)
    dtype = self.dtype or x.dtype
    y = jnp.tanh(self.alpha[...].astype(jnp.float32) * x.astype(jnp.float32))
    y = _expand(self.weight[...].astype(jnp.float32), y.ndim) * y
    if self.bias is not None:
      y = y + _expand(self.bias[...].astype(jnp.float32), y.ndim)
    return y.astype(dtype)
