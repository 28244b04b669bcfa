"""Direct preference optimisation losses (sigmoid / conservative, robust, hinge, IPO)."""

import chex
import jax
import jax.numpy as jnp

from rljax.losses import _utils

KINDS = ("sigmoid", "robust", "hinge", "ipo")


def _check(fn: str, **logps: jax.Array) -> jnp.dtype:
  for name, x in logps.items():
    _utils.check_float(fn, name, x, 1)
  chex.assert_equal_shape(
    list(logps.values()), custom_message=f"{fn}: all four log-prob arrays must be [B]"
  )
  return _utils.compute_dtype(*logps.values())


def dpo_implicit_rewards(
  chosen_logp: jax.Array,
  rejected_logp: jax.Array,
  ref_chosen_logp: jax.Array,
  ref_rejected_logp: jax.Array,
  *,
  beta: float = 0.1,
) -> tuple[jax.Array, jax.Array]:
  r"""DPO's implicit rewards beta (log pi - log pi_ref) of the chosen and rejected answers.

  Args:
    chosen_logp, rejected_logp: ``[B]`` summed sequence log-probs under the policy.
    ref_chosen_logp, ref_rejected_logp: ``[B]`` the same under the reference model.
    beta: the DPO temperature.

  Returns:
    ``(chosen_rewards, rejected_rewards)``, each ``[B]``, for logging (no gradient is stopped).
  """
  dtype = _check(
    "dpo_implicit_rewards",
    chosen_logp=chosen_logp,
    rejected_logp=rejected_logp,
    ref_chosen_logp=ref_chosen_logp,
    ref_rejected_logp=ref_rejected_logp,
  )
  chosen = beta * (chosen_logp.astype(dtype) - ref_chosen_logp.astype(dtype))
  rejected = beta * (rejected_logp.astype(dtype) - ref_rejected_logp.astype(dtype))
  return chosen, rejected


def dpo_reward_margin(
  chosen_logp: jax.Array,
  rejected_logp: jax.Array,
  ref_chosen_logp: jax.Array,
  ref_rejected_logp: jax.Array,
  *,
  beta: float = 0.1,
) -> jax.Array:
  """Per-pair reward margin ``[B]``: chosen_reward - rejected_reward (see dpo_implicit_rewards)."""
  chosen, rejected = dpo_implicit_rewards(
    chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp, beta=beta
  )
  return chosen - rejected


def dpo_reward_accuracy(
  chosen_logp: jax.Array,
  rejected_logp: jax.Array,
  ref_chosen_logp: jax.Array,
  ref_rejected_logp: jax.Array,
  *,
  beta: float = 0.1,
) -> jax.Array:
  """Per-pair accuracy ``[B]``: 1.0 where chosen_reward > rejected_reward, else 0.0."""
  margin = dpo_reward_margin(
    chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp, beta=beta
  )
  return (margin > 0).astype(margin.dtype)


def dpo_loss(
  chosen_logp: jax.Array,
  rejected_logp: jax.Array,
  ref_chosen_logp: jax.Array,
  ref_rejected_logp: jax.Array,
  *,
  beta: float = 0.1,
  kind: str = "sigmoid",
  label_smoothing: float = 0.0,
) -> jax.Array:
  r"""Per-pair DPO loss (to minimise) from summed sequence log-probs.

  With h = (chosen_logp - ref_chosen_logp) - (rejected_logp - ref_rejected_logp) and
  ls = label_smoothing:
  - "sigmoid": -(1 - ls) log sigma(beta h) - ls log sigma(-beta h)  (ls > 0: conservative DPO)
  - "robust":  (-(1 - ls) log sigma(beta h) + ls log sigma(-beta h)) / (1 - 2 ls)  (rDPO)
  - "hinge":   max(0, 1 - beta h)  (SLiC)
  - "ipo":     (h - 1 / (2 beta))^2  (IPO; the IPO paper uses length-averaged log-probs,
    which the caller passes in place of sums)

  Args:
    chosen_logp: ``[B]`` summed log-probs of the chosen answers under the policy.
    rejected_logp: ``[B]`` the same for the rejected answers.
    ref_chosen_logp: ``[B]`` chosen, under the frozen reference model.
    ref_rejected_logp: ``[B]`` rejected, under the reference model.
    beta: the DPO temperature (> 0).
    kind: ``"sigmoid"``, ``"robust"``, ``"hinge"`` or ``"ipo"``.
    label_smoothing: in [0, 0.5); only for "sigmoid" and "robust".

  Returns:
    ``[B]`` per-pair loss (float32 or wider); take the mean.

  Papers: DPO (arXiv 2305.18290), cDPO (Mitchell 2023), rDPO (arXiv 2403.00409),
  SLiC (arXiv 2305.10425), IPO (arXiv 2310.12036).
  """
  fn = "dpo_loss"
  _utils.check_choice(fn, "kind", kind, KINDS)
  if isinstance(beta, (int, float)) and not beta > 0:
    raise ValueError(f"{fn}: `beta` must be > 0, got {beta}")
  if not 0 <= label_smoothing < 0.5:
    raise ValueError(f"{fn}: `label_smoothing` must be in [0, 0.5), got {label_smoothing}")
  if label_smoothing and kind in ("hinge", "ipo"):
    raise ValueError(
      f"{fn}: `label_smoothing` applies only to kind='sigmoid' or 'robust', not {kind!r}"
    )
  dtype = _check(
    fn,
    chosen_logp=chosen_logp,
    rejected_logp=rejected_logp,
    ref_chosen_logp=ref_chosen_logp,
    ref_rejected_logp=ref_rejected_logp,
  )
  h_B = (chosen_logp.astype(dtype) - ref_chosen_logp.astype(dtype)) - (
    rejected_logp.astype(dtype) - ref_rejected_logp.astype(dtype)
  )
  ls = label_smoothing
  if kind == "sigmoid":
    return -(1 - ls) * jax.nn.log_sigmoid(beta * h_B) - ls * jax.nn.log_sigmoid(-beta * h_B)
  if kind == "robust":
    num = -(1 - ls) * jax.nn.log_sigmoid(beta * h_B) + ls * jax.nn.log_sigmoid(-beta * h_B)
    return num / (1 - 2 * ls)
  if kind == "hinge":
    return jax.nn.relu(1 - beta * h_B)
  return jnp.square(h_B - 1 / (2 * beta))
