"""DAPO's reward shaping and batch filtering: soft overlong punishment, dynamic sampling."""

import chex
import jax
import jax.numpy as jnp


def overlong_penalty(lengths: jax.Array, *, max_len: int, cache_len: int) -> jax.Array:
  r"""DAPO's soft overlong punishment, added to the reward.

  With L_exp = max_len - cache_len:
  R = 0 if len <= L_exp;  (L_exp - len) / cache_len if L_exp < len <= max_len;  -1 if len > max_len.

  Args:
    lengths: ``[B]`` response lengths in tokens (int or float).
    max_len: L_max, the longest allowed response (paper: 20480).
    cache_len: L_cache, the punishment interval (paper: 4096), 0 < cache_len <= max_len.

  Returns:
    ``[B]`` float32 penalties in [-1, 0].

  Paper: DAPO (arXiv 2503.14476), section 3.4.
  """
  fn = "overlong_penalty"
  if not 0 < cache_len <= max_len:
    raise ValueError(
      f"{fn}: need 0 < `cache_len` <= `max_len`, got cache_len={cache_len}, max_len={max_len}"
    )
  chex.assert_rank(lengths, 1, custom_message=f"{fn}: `lengths` must be [B]")
  length = lengths.astype(jnp.float32)
  expected = max_len - cache_len
  soft = (expected - length) / cache_len
  return jnp.where(length <= expected, 0.0, jnp.where(length <= max_len, soft, -1.0))


def dynamic_sampling_mask(rewards: jax.Array) -> jax.Array:
  r"""DAPO's dynamic-sampling filter: True for groups whose G rewards are not all equal.

  A group that is all right or all wrong has zero group advantage and gives no gradient; DAPO
  drops such groups and samples more until the batch is full.

  Args:
    rewards: ``[P, G]`` rewards, one row per prompt.

  Returns:
    ``[P]`` bool, True where the group carries signal (keep it).

  Paper: DAPO (arXiv 2503.14476), section 3.2.
  """
  chex.assert_rank(rewards, 2, custom_message="dynamic_sampling_mask: `rewards` must be [P, G]")
  return jnp.any(rewards != rewards[:, :1], axis=1)
