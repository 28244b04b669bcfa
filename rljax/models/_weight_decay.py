"""Which parameters an optimizer should decay."""

from __future__ import annotations

from typing import Any

import jax

# Leaf names never decayed: biases, norm scales (RMSNorm ``scale``, DyT ``weight`` / ``alpha``).
_NO_DECAY_NAMES = frozenset({"bias", "scale", "alpha", "embed_scale"})


def _names(path) -> list[str]:
  names = []
  for entry in path:
    if isinstance(entry, jax.tree_util.DictKey):
      names.append(str(entry.key))
    elif isinstance(entry, jax.tree_util.GetAttrKey):
      names.append(entry.name)
    elif isinstance(entry, jax.tree_util.SequenceKey):
      names.append(str(entry.idx))
  return names


def weight_decay_mask(params: Any) -> Any:
  """Boolean pytree: True for parameters to decay (matrices), False for norms, DyT alpha, biases.

  A leaf is decayed iff it has rank >= 2 and no path component names a norm (``*norm*``) or is
  ``bias`` / ``scale`` / ``alpha`` / ``embed_scale``. Works on ``nnx.state(model, nnx.Param)``
  and on plain nested dicts; pass it as optax's ``mask`` (``optax.adamw(..., mask=
  weight_decay_mask)``).

  Args:
    params: a pytree of parameters (arrays, or nnx Variables holding arrays).

  Returns:
    A pytree of Python bools with the structure of ``params`` (leaf for leaf).
  """

  def decide(path, leaf) -> bool:
    names = [n for n in _names(path) if n != "value"]
    if any(n in _NO_DECAY_NAMES or "norm" in n for n in names):
      return False
    return getattr(leaf, "ndim", 0) >= 2

  return jax.tree_util.tree_map_with_path(decide, params)
