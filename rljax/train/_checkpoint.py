"""Orbax checkpoints: train state + JSON metadata, keep-last-K, fallback on a bad latest.

A checkpoint ``<run_dir>/checkpoints/<step>/`` holds two items:

* ``state``: the train-state pytree (params, optimizer state, step, rng key data);
* ``meta``: JSON with the data-iterator position, the phase, and the job config.

Orbax writes each step to a temporary folder and renames it when complete, so a run killed
while saving leaves no half-written step behind; a step whose files were damaged later fails
to restore and :meth:`Checkpointer.restore` falls back to the previous step with a warning.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp

from rljax.train._config import CheckpointConfig


class Checkpointer:
  """A thin wrapper over ``orbax.checkpoint.CheckpointManager``.

  Args:
    directory: checkpoint folder (created on the first save).
    cfg: save interval and how many checkpoints to keep.
  """

  def __init__(self, directory: str, cfg: CheckpointConfig | None = None):
    self.directory = os.path.abspath(directory)
    self.cfg = cfg or CheckpointConfig()
    self._manager: ocp.CheckpointManager | None = None

  def _mgr(self) -> ocp.CheckpointManager:
    if self._manager is None:
      opts = ocp.CheckpointManagerOptions(
          max_to_keep=self.cfg.keep, create=True, enable_async_checkpointing=False)
      self._manager = ocp.CheckpointManager(self.directory, options=opts)
    return self._manager

  def should_save(self, step: int) -> bool:
    return self.cfg.every > 0 and step % self.cfg.every == 0

  def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Save ``state`` and JSON ``meta`` as checkpoint ``step`` (blocking)."""
    mgr = self._mgr()
    if step in mgr.all_steps():
      return
    mgr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
    mgr.wait_until_finished()

  def steps(self) -> list[int]:
    if not os.path.isdir(self.directory):
      return []
    return sorted(self._mgr().all_steps())

  def restore(self, abstract_state: Any) -> tuple[Any, dict[str, Any], int] | None:
    """Restore the newest readable checkpoint, falling back to older ones with a warning.

    Args:
      abstract_state: a pytree of arrays or ``jax.ShapeDtypeStruct`` (with shardings) that
        gives the structure, dtypes and placement of the restored state.

    Returns:
      ``(state, meta, step)``, or ``None`` when no checkpoint can be read.
    """
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    for step in reversed(self.steps()):
      try:
        out = self._mgr().restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        return out.state, dict(out.meta), step
      except Exception as e:
        warnings.warn(
            f"checkpoint {step} in {self.directory} is corrupt or partial "
            f"({type(e).__name__}: {str(e)[:200]}); falling back to the previous checkpoint",
            stacklevel=2)
    return None

  def restore_meta(self) -> tuple[dict[str, Any], int] | None:
    """The JSON metadata of the newest checkpoint whose metadata reads."""
    for step in reversed(self.steps()):
      try:
        out = self._mgr().restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(out.meta), step
      except Exception:
        continue
    return None

  def close(self) -> None:
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()
      self._manager = None
