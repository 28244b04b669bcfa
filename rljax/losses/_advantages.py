"""Advantage estimators: group-relative (GRPO, Dr. GRPO, RLOO), GAE, and masked whitening."""

import chex
import jax
import jax.numpy as jnp

from rljax.losses import _utils

_SCALES = ("std", "none")
_BASELINES = ("mean", "leave_one_out")


def group_advantages(
  rewards: jax.Array,
  *,
  scale: str = "std",
  baseline: str = "mean",
  eps: float = 1e-6,
) -> jax.Array:
  r"""Group-relative advantages of G completions per prompt (GRPO, Dr. GRPO, RLOO).

  With ``baseline="mean"``: A_i = R_i - mean(R); with ``baseline="leave_one_out"`` (RLOO):
  A_i = R_i - mean_{j != i} R_j. With ``scale="std"`` (GRPO) A is then divided by
  ``std(R) + eps`` (sample std, ddof=1); ``scale="none"`` (Dr. GRPO) leaves it unscaled.
  Rewards are centred on the group's first reward before averaging, so a group of identical
  rewards gives exactly 0 (never NaN), and the std uses a guarded sqrt (finite gradients).

  Args:
    rewards: ``[P, G]`` scalar rewards, one row per prompt, one column per completion.
    scale: ``"std"`` or ``"none"``.
    baseline: ``"mean"`` or ``"leave_one_out"``.
    eps: added to the std before dividing.

  Returns:
    ``[P, G]`` advantages (float32 or wider); every token of completion i gets A_i.

  Papers: GRPO (arXiv 2402.03300), Dr. GRPO (arXiv 2503.20783), RLOO (arXiv 2402.14740).
  """
  fn = "group_advantages"
  _utils.check_choice(fn, "scale", scale, _SCALES)
  _utils.check_choice(fn, "baseline", baseline, _BASELINES)
  chex.assert_rank(rewards, 2, custom_message=f"{fn}: `rewards` must be [P, G]")
  group_size = rewards.shape[1]
  if group_size < 2 and (scale == "std" or baseline == "leave_one_out"):
    raise ValueError(
      f"{fn}: scale={scale!r}, baseline={baseline!r} need a group size G >= 2; "
      f"`rewards` has shape {rewards.shape}"
    )
  dtype = _utils.compute_dtype(rewards)
  r_PG = rewards.astype(dtype)
  # Centre on the first reward: identical rewards give d = 0 exactly, and mean(d) = 0 exactly.
  d_PG = r_PG - r_PG[:, :1]
  sum_P1 = jnp.sum(d_PG, axis=1, keepdims=True)
  centred_PG = d_PG - sum_P1 / group_size  # R - mean(R)
  if baseline == "mean":
    adv_PG = centred_PG
  else:
    adv_PG = d_PG - (sum_P1 - d_PG) / (group_size - 1)  # R_i - mean of the other G-1
  if scale == "std":
    var_P1 = jnp.sum(centred_PG * centred_PG, axis=1, keepdims=True) / (group_size - 1)
    positive = var_P1 > 0
    std_P1 = jnp.where(positive, jnp.sqrt(jnp.where(positive, var_P1, 1)), 0)
    adv_PG = _utils.safe_div(adv_PG, std_P1 + eps)  # 0 / 0 -> 0 even with eps = 0
  return adv_PG


def gae(
  rewards: jax.Array,
  values: jax.Array,
  mask: jax.Array,
  *,
  gamma: float = 1.0,
  lam: float = 0.95,
) -> tuple[jax.Array, jax.Array]:
  r"""Generalised advantage estimation over valid tokens, by a reverse ``lax.scan``.

  delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lam A_{t+1},  returns = A + V.
  "t+1" is the next *valid* token of the row (masked tokens, e.g. padding or tool output, are
  skipped and carry the recursion through); after the last valid token V = A = 0. For LLMs the
  reward usually sits on the last valid token, gamma = 1 and lam = 0.95.

  Args:
    rewards: ``[B, T]`` per-token rewards.
    values: ``[B, T]`` critic values V_t.
    mask: ``[B, T]`` bool (or 0/1) valid-token mask.
    gamma: discount.
    lam: GAE lambda.

  Returns:
    ``(advantages, returns)``, each ``[B, T]``, 0 at masked positions. Neither is
    differentiated in PPO; wrap in ``stop_gradient`` if the values carry gradients.

  Paper: Schulman et al. 2015, "High-dimensional continuous control using GAE" (arXiv 1506.02438).
  """
  fn = "gae"
  _utils.check_float(fn, "rewards", rewards, 2)
  _utils.check_float(fn, "values", values, 2)
  chex.assert_equal_shape([rewards, values], custom_message=f"{fn}: `values` must match `rewards`")
  dtype = _utils.compute_dtype(rewards, values)
  m_BT = _utils.as_mask(fn, mask, rewards, dtype)
  r_BT = rewards.astype(dtype)
  v_BT = values.astype(dtype)

  def step(carry, xs):
    next_value_B, next_adv_B = carry
    r_B, v_B, m_B = xs
    delta_B = r_B + gamma * next_value_B - v_B
    adv_B = delta_B + gamma * lam * next_adv_B
    valid_B = m_B > 0
    carry = (jnp.where(valid_B, v_B, next_value_B), jnp.where(valid_B, adv_B, next_adv_B))
    return carry, jnp.where(valid_B, adv_B, 0)

  zeros_B = jnp.zeros(rewards.shape[:1], dtype)
  _, adv_TB = jax.lax.scan(step, (zeros_B, zeros_B), (r_BT.T, v_BT.T, m_BT.T), reverse=True)
  adv_BT = adv_TB.T
  returns_BT = jnp.where(m_BT > 0, adv_BT + v_BT, 0)
  return adv_BT, returns_BT


def whiten(
  x: jax.Array, mask: jax.Array, *, shift_mean: bool = True, eps: float = 1e-8
) -> jax.Array:
  r"""Whitens ``x`` over its valid entries: (x - mean) / sqrt(var + eps), 0 where masked.

  mean and var (unbiased, n/(n-1)) are taken over all valid entries of the array, pooled over
  rows (PPO's advantage whitening). ``shift_mean=False`` rescales without centring (adds the
  mean back). An all-masked input returns zeros.

  Args:
    x: ``[B, T]`` (any shape) values, e.g. GAE advantages.
    mask: bool (or 0/1) mask of the same shape.
    shift_mean: subtract the mean (True) or keep it (False).
    eps: added to the variance.

  Returns:
    Whitened values, same shape as ``x``.
  """
  fn = "whiten"
  _utils.check_float(fn, "x", x)
  dtype = _utils.compute_dtype(x)
  m = _utils.as_mask(fn, mask, x, dtype)
  xf = jnp.where(m > 0, x.astype(dtype), 0)
  n = jnp.sum(m)
  mean = _utils.safe_div(jnp.sum(xf * m), n)
  centred = jnp.where(m > 0, xf - mean, 0)
  var = _utils.safe_div(jnp.sum(centred * centred * m), n)
  var = var * jnp.where(n > 1, _utils.safe_div(n, n - 1), 1)  # unbiased
  out = centred * jax.lax.rsqrt(var + eps)
  if not shift_mean:
    out = out + mean
  return jnp.where(m > 0, out, 0)
