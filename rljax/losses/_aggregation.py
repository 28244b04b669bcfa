"""Reducing a per-token loss to a scalar, with each mode defined by its formula."""

import jax
import jax.numpy as jnp

from rljax.losses import _utils

MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def aggregate(
  loss: jax.Array,
  mask: jax.Array,
  mode: str,
  *,
  max_len: int | None = None,
) -> jax.Array:
  r"""Reduces a per-token loss ``[B, T]`` over its valid tokens to a scalar.

  With m the mask and n_i = sum_t m_it the valid tokens of row i:

  | mode                      | formula                                           | used by  |
  |---------------------------|---------------------------------------------------|----------|
  | "token-mean"              | sum(L m) / sum(m)                                 | DAPO     |
  | "seq-mean-token-mean"     | mean over rows with n_i > 0 of sum_t(L m) / n_i   | GRPO     |
  | "seq-mean-token-sum"      | mean over rows with n_i > 0 of sum_t(L m)         |          |
  | "seq-mean-token-sum-norm" | sum(L m) / (B max_len), max_len defaults to T     | Dr. GRPO |

  Masked entries are removed with ``where`` (NaN or inf there never leaks in). An all-masked
  input gives 0 with zero (finite) gradients. ``mask`` may hold weights instead of 0/1.

  Args:
    loss: ``[B, T]`` unreduced per-token loss.
    mask: ``[B, T]`` bool (or float weights) valid-token mask.
    mode: one of the four modes above.
    max_len: the constant of "seq-mean-token-sum-norm" (> 0); ignored by the other modes.

  Returns:
    Scalar loss.

  Papers: DAPO (arXiv 2503.14476), Dr. GRPO (arXiv 2503.20783), GRPO (arXiv 2402.03300).
  """
  fn = "aggregate"
  _utils.check_choice(fn, "mode", mode, MODES)
  if max_len is not None and not max_len > 0:
    raise ValueError(f"{fn}: `max_len` must be > 0 (or None), got {max_len}")
  _utils.check_float(fn, "loss", loss, 2)
  dtype = _utils.compute_dtype(loss)
  m_BT = _utils.as_mask(fn, mask, loss, dtype)
  lm_BT = jnp.where(m_BT != 0, loss.astype(dtype) * m_BT, 0)
  if mode == "token-mean":
    return _utils.safe_div(jnp.sum(lm_BT), jnp.sum(m_BT))
  if mode == "seq-mean-token-sum-norm":
    denom = loss.shape[0] * (loss.shape[1] if max_len is None else max_len)
    return jnp.sum(lm_BT) / denom
  n_B = jnp.sum(m_BT, axis=1)
  row_B = jnp.sum(lm_BT, axis=1)
  if mode == "seq-mean-token-mean":
    row_B = _utils.safe_div(row_B, n_B)
  valid_rows = (n_B != 0).astype(dtype)
  return _utils.safe_div(jnp.sum(row_B * valid_rows), jnp.sum(valid_rows))
