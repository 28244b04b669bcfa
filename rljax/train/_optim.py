"""The optax optimizer: AdamW, warm-up + decay schedule, clipping, a weight-decay mask."""

from __future__ import annotations

import optax

from rljax.models import weight_decay_mask
from rljax.train._config import OptimConfig


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
