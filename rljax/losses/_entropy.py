"""Token entropy, the high-entropy-token mask (80/20) and the entropy-based advantage."""

import fractions

import chex
import jax
import jax.numpy as jnp

from rljax.losses import _utils

# rho is read as the nearest fraction num/den with den <= this, so that a decimal like 0.2 is
# exactly 1/5 and ceil(rho * n) is computed exactly in int32 for any n < 2**31.
_RHO_MAX_DENOMINATOR = 10_000


def token_entropy(logits: jax.Array, *, temperature: float = 1.0) -> jax.Array:
  r"""Entropy of the next-token distribution, in float32.

  H = -sum_v p_v log p_v,  p = softmax(logits / temperature), computed in (at least) fp32.
  Entries equal to ``-inf`` (masked vocabulary) contribute 0, and their gradient is 0; a row
  with every entry ``-inf`` has entropy 0.

  Args:
    logits: ``[..., V]`` (e.g. ``[B, T, V]``) logits.
    temperature: the sampling temperature (> 0); the 80/20 paper uses the rollout's.

  Returns:
    ``[...]`` entropies (e.g. ``[B, T]``), float32 or wider.

  Paper: "Beyond the 80/20 rule: high-entropy minority tokens" (arXiv 2506.01939).
  """
  fn = "token_entropy"
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"{fn}: `temperature` must be > 0, got {temperature}")
  _utils.check_float(fn, "logits", logits)
  if logits.ndim < 1:
    raise ValueError(f"{fn}: `logits` must have a vocabulary axis, got shape {logits.shape}")
  dtype = _utils.compute_dtype(logits)
  l_V = logits.astype(dtype) / temperature
  valid_V = l_V > -jnp.inf
  l_V = jnp.where(valid_V, l_V, jnp.finfo(dtype).min)  # finite, so no 0 * inf below
  logp_V = jax.nn.log_softmax(l_V, axis=-1)
  p_V = jnp.exp(logp_V)
  h = -jnp.sum(jnp.where(valid_V, p_V * logp_V, 0), axis=-1)
  return jnp.where(jnp.any(valid_V, axis=-1), h, 0)


def _rho_fraction(fn: str, rho: float) -> fractions.Fraction:
  if isinstance(rho, bool) or not isinstance(rho, (int, float)):
    raise TypeError(f"{fn}: `rho` must be a Python float in (0, 1], got {type(rho).__name__}")
  if not 0 < rho <= 1:
    raise ValueError(f"{fn}: `rho` must be in (0, 1], got {rho}")
  frac = fractions.Fraction(rho).limit_denominator(_RHO_MAX_DENOMINATOR)
  if frac == 0:
    raise ValueError(f"{fn}: `rho` must be >= {1 / _RHO_MAX_DENOMINATOR}, got {rho}")
  return frac


def top_entropy_mask(entropy: jax.Array, mask: jax.Array, *, rho: float = 0.2) -> jax.Array:
  r"""Keeps the top ``rho`` fraction of valid tokens by entropy, pooled over the whole batch.

  k = ceil(rho * n_valid) with n_valid = sum(mask); returns the mask of the k valid tokens with
  the highest entropy (ties broken by flat position, earlier first, so exactly k are kept; a NaN
  entropy is never kept).
  ``rho = 1`` returns the mask itself. Multiply it into the per-token loss (and the aggregation
  mask, so a token-mean divides by the kept tokens). ``rho`` is read as the nearest fraction with
  denominator <= 10000, so ``rho=0.2`` keeps exactly ceil(n / 5).

  Args:
    entropy: ``[B, T]`` per-token entropy (see :func:`token_entropy`), typically detached.
    mask: ``[B, T]`` bool (or 0/1) valid response-token mask.
    rho: the kept fraction, a Python float in (0, 1]; the paper uses 0.2.

  Returns:
    ``[B, T]`` bool mask, a subset of ``mask``.

  Paper: "Beyond the 80/20 rule: high-entropy minority tokens" (arXiv 2506.01939).
  """
  fn = "top_entropy_mask"
  frac = _rho_fraction(fn, rho)
  _utils.check_float(fn, "entropy", entropy, 2)
  chex.assert_equal_shape([entropy, mask], custom_message=f"{fn}: `mask` must match `entropy`")
  valid_BT = mask.astype(bool)
  if frac == 1:
    return valid_BT
  valid_N = valid_BT.reshape(-1)
  h_N = jax.lax.stop_gradient(entropy).astype(_utils.compute_dtype(entropy)).reshape(-1)
  # k = ceil(num * n / den) exactly in int32: n = q den + r, so k = q num + ceil(num r / den).
  n_valid = jnp.sum(valid_N, dtype=jnp.int32)
  num, den = frac.numerator, frac.denominator
  q, r = n_valid // den, n_valid % den
  k = q * num + (num * r + den - 1) // den
  # The k-th largest valid entropy is the threshold; keep everything above it, then the
  # earliest (k - #above) tokens equal to it, so exactly k are kept even with ties.
  score_N = jnp.where(valid_N, h_N, -jnp.inf)
  threshold = -jnp.sort(-score_N)[jnp.maximum(k - 1, 0)]
  above_N = valid_N & (score_N > threshold)
  tie_N = valid_N & (score_N == threshold)
  n_ties_kept = k - jnp.sum(above_N, dtype=jnp.int32)
  keep_N = above_N | (tie_N & (jnp.cumsum(tie_N, dtype=jnp.int32) <= n_ties_kept))
  keep_N = keep_N & (k > 0)
  return keep_N.reshape(entropy.shape)


def entropy_advantage(
  advantages: jax.Array,
  entropy: jax.Array,
  *,
  alpha: float = 0.4,
  kappa: float = 2.0,
) -> jax.Array:
  r"""Entropy-shaped advantage: A' = A + min(alpha * stop_gradient(H), |A| / kappa).

  The entropy term is detached (this is not an entropy bonus); the clip at |A| / kappa keeps it
  from flipping the sign of a negative advantage, and it is 0 where A = 0.

  Args:
    advantages: ``[B, T]``, or ``[B]`` broadcast over tokens.
    entropy: ``[B, T]`` per-token entropy (H >= 0).
    alpha: entropy scale (0.4 for GRPO, 0.1 for PPO; secondary sources).
    kappa: clip ratio (> 0), default 2.

  Returns:
    ``[B, T]`` shaped advantages.

  Paper: "Reasoning with exploration: an entropy perspective" (arXiv 2506.14758).
  """
  fn = "entropy_advantage"
  if isinstance(kappa, (int, float)) and not kappa > 0:
    raise ValueError(f"{fn}: `kappa` must be > 0, got {kappa}")
  _utils.check_float(fn, "advantages", advantages, {1, 2})
  _utils.check_float(fn, "entropy", entropy, 2)
  if advantages.ndim == 1:
    chex.assert_equal_shape_prefix(
      [entropy, advantages], 1, custom_message=f"{fn}: `advantages` [B] must match entropy's B"
    )
    advantages = jnp.broadcast_to(advantages[:, None], entropy.shape)
  else:
    chex.assert_equal_shape(
      [advantages, entropy], custom_message=f"{fn}: `advantages` must be [B, T] or [B]"
    )
  dtype = _utils.compute_dtype(advantages, entropy)
  adv = advantages.astype(dtype)
  h = jax.lax.stop_gradient(entropy).astype(dtype)
  return adv + jnp.minimum(alpha * h, jnp.abs(adv) / kappa)
