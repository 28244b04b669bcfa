"""``get_task(name, **kwargs)``: the tasks by the names the CLI and experiments use."""

from __future__ import annotations

from collections.abc import Callable

from rljax.tasks._arithmetic_dag import ArithmeticDAG
from rljax.tasks._base import Task
from rljax.tasks._code_edit import CodeEdit
from rljax.tasks._countdown import Countdown
from rljax.tasks._datasets import DatasetTask
from rljax.tasks._general_points import GeneralPoints

_SYNTHETIC = {
  "arithmetic_dag": ArithmeticDAG,
  "general_points": GeneralPoints,
  "countdown": Countdown,
  "code_edit": CodeEdit,
}
_PREFIXES = ("reasoning_gym:<name>", "jsonl:<path>", "datasets:<path>")


def register_task(name: str, factory: Callable[..., Task], *, overwrite: bool = False) -> None:
  """Make ``get_task(name, **kwargs)`` (and so the trainers' ``TaskSpec(name=...)``) return
  ``factory(**kwargs)``, e.g. a :class:`Task` subclass with its own reward.

  Raises:
    ValueError: if ``name`` is empty, contains ``":"`` (reserved for the prefixed families) or
      is taken by another factory and ``overwrite`` is False.
    TypeError: if ``factory`` is not callable.
  """
  if not isinstance(name, str) or not name or ":" in name:
    raise ValueError(f"register_task: name must be a non-empty str without ':', got {name!r}")
  if not callable(factory):
    raise TypeError(f"register_task: factory must be callable, got {type(factory).__name__}")
  if name in _SYNTHETIC and _SYNTHETIC[name] is not factory and not overwrite:
    raise ValueError(f"register_task: task {name!r} is already registered; pass overwrite=True "
                     "to replace it")
  _SYNTHETIC[name] = factory


def task_names() -> list[str]:
  """The valid names: the synthetic tasks and the prefixed families."""
  return [*_SYNTHETIC, *_PREFIXES]


def get_task(name: str, **kwargs) -> Task:
  """The task called ``name``, built with ``kwargs``.

  Names: "arithmetic_dag", "general_points", "countdown", "code_edit",
  "reasoning_gym:<dataset>" (optional extra), "jsonl:<path>" (JSONL or Parquet file) and
  "datasets:<path>" (a ``Dataset.save_to_disk`` folder, or any file ``jsonl:`` reads). For the
  data families, ``kwargs`` go to :class:`DatasetTask` (checker, answer_format, ...) and
  ``column_names`` to the loader.

  Raises:
    ValueError: for an unknown name, listing the valid ones.
  """
  if name in _SYNTHETIC:
    return _SYNTHETIC[name](**kwargs)
  prefix, sep, rest = name.partition(":")
  if sep and rest:
    if prefix == "reasoning_gym":
      from rljax.tasks._reasoning_gym import ReasoningGymTask

      return ReasoningGymTask(rest, **kwargs)
    if prefix in ("jsonl", "datasets"):
      kwargs.setdefault("name", name)
      return DatasetTask.from_path(rest, **kwargs)
  raise ValueError(f"unknown task {name!r}; valid: {', '.join(task_names())}")


__all__ = ["get_task", "register_task", "task_names"]
