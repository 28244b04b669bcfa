"""The optax optimizer: AdamW, warm-up + decay schedule, clipping, a weight-decay mask."""

from __future__ import annotations

import re

import jax
import optax

from rljax.train._config import OptimConfig

# Parameters whose path matches this never get weight decay: norm scales, DyT alpha/weight/bias,
# biases, scalar gates, and anything of rank < 2.
_NO_DECAY = re.compile(r"(norm|alpha|bias|scale|dyt|ln_|layernorm|beta_init|a_log|dt_bias)",
                       re.IGNORECASE)


def _path_str(path) -> str:
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def weight_decay_mask(params) -> object:
  """Boolean pytree: True where AdamW applies weight decay.

  Decay applies to matrices (rank >= 2) whose path names no norm, DyT alpha or bias.
  Embeddings are matrices and are decayed (as in most LM recipes).

  Args:
    params: a pytree of arrays (e.g. an ``nnx.State`` of ``nnx.Param``).

  Returns:
    A pytree of bools with the structure of ``params``.
  """
  def leaf(path, x):
    return bool(getattr(x, "ndim", 0) >= 2 and not _NO_DECAY.search(_path_str(path)))
  return jax.tree_util.tree_map_with_path(leaf, params)


def learning_rate_schedule(cfg: OptimConfig) -> optax.Schedule:
  """Linear warm-up to ``cfg.learning_rate`` then cosine / linear / constant decay."""
  peak, end = cfg.learning_rate, cfg.learning_rate * cfg.min_lr_ratio
  if cfg.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, cfg.decay_steps, alpha=cfg.min_lr_ratio)
  elif cfg.schedule == "linear":
    decay = optax.linear_schedule(peak, end, cfg.decay_steps)
  else:
    decay = optax.constant_schedule(peak)
  if cfg.warmup_steps == 0:
    return decay
  warm = optax.linear_schedule(0.0, peak, cfg.warmup_steps)
  return optax.join_schedules([warm, decay], [cfg.warmup_steps])


def make_optimizer(cfg: OptimConfig, params=None) -> optax.GradientTransformation:
  """AdamW with the schedule, global-norm clipping and the weight-decay mask.

  Args:
    cfg: the optimizer config.
    params: optional parameter pytree; the mask is computed from it when given, else
      lazily from the pytree passed to ``init``.

  Returns:
    An ``optax.GradientTransformation``.
  """
  mask = weight_decay_mask(params) if params is not None else weight_decay_mask
  adamw = optax.adamw(learning_rate_schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                      weight_decay=cfg.weight_decay, mask=mask)
  if cfg.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adamw)
  return adamw
