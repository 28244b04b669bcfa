"""rljax.losses: pure, unreduced loss functions for RL on language models.

Arrays in, arrays out: no model, no config object, nothing else from rljax. Per-token losses
are ``[B, T]``; reduce them with :func:`aggregate` and a mask. Formulas and papers are in each
docstring.
"""

from rljax.losses._advantages import gae, group_advantages, whiten
from rljax.losses._aggregation import aggregate
from rljax.losses._dapo import dynamic_sampling_mask, overlong_penalty
from rljax.losses._dpo import dpo_implicit_rewards, dpo_loss, dpo_reward_accuracy, dpo_reward_margin
from rljax.losses._entropy import entropy_advantage, token_entropy, top_entropy_mask
from rljax.losses._kl import kl_penalty
from rljax.losses._policy_gradient import (
  ClipFractions,
  clip_fraction,
  clip_fractions,
  clipped_surrogate,
)
from rljax.losses._value import clipped_value_loss

__all__ = [
  "ClipFractions",
  "aggregate",
  "clip_fraction",
  "clip_fractions",
  "clipped_surrogate",
  "clipped_value_loss",
  "dpo_implicit_rewards",
  "dpo_loss",
  "dpo_reward_accuracy",
  "dpo_reward_margin",
  "dynamic_sampling_mask",
  "entropy_advantage",
  "gae",
  "group_advantages",
  "kl_penalty",
  "overlong_penalty",
  "token_entropy",
  "top_entropy_mask",
  "whiten",
]
