"""``reasoning_gym:<name>``: the procedurally generated tasks of the ``reasoning-gym`` package.

An optional extra (``pip install reasoning-gym``); it generates offline. Correctness is
``dataset.score_answer(answer, entry) >= threshold``; the reward is that score (in [0, 1]), or
the format penalty when the completion has no ``<answer>..</answer>``.
"""

from __future__ import annotations

import copy

from rljax.tasks._base import (
  Example,
  SeedOrRng,
  Task,
  as_rng,
  check_n,
  extract_answer,
  wrap_answer,
)


def _import_rg():
  try:
    import reasoning_gym
  except ImportError as e:
    raise ImportError(
      "reasoning_gym tasks need the optional extra: `pip install reasoning-gym` "
      "(or `pip install rljax[tasks]`)"
    ) from e
  return reasoning_gym


def reasoning_gym_names() -> list[str]:
  """Names of the datasets the installed ``reasoning-gym`` provides."""
  _import_rg()
  from reasoning_gym.factory import DATASETS

  return sorted(DATASETS)


class ReasoningGymTask(Task):
  """Adapter over one ``reasoning-gym`` dataset (e.g. chain_sum, basic_arithmetic, countdown,
  gsm_symbolic).

  Args:
    dataset: the reasoning-gym dataset name.
    threshold: ``score_answer`` at or above this counts as correct.
    format_penalty: reward when the completion has no ``<answer>`` tags.
    prompt_suffix: appended to the question to state the answer format.
    **config: default dataset options (difficulty), overridable per ``generate`` call.
  """

  def __init__(
    self,
    dataset: str,
    *,
    threshold: float = 1.0,
    format_penalty: float = -1.0,
    prompt_suffix: str = "\nPut the final answer in <answer></answer>.\n",
    **config,
  ):
    rg = _import_rg()
    from reasoning_gym.factory import DATASETS

    if dataset not in DATASETS:
      raise ValueError(f"unknown reasoning_gym dataset {dataset!r}; valid: {sorted(DATASETS)}")
    if not 0.0 < threshold <= 1.0:
      raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    self._rg = rg
    self.dataset = dataset
    self.name = f"reasoning_gym:{dataset}"
    self.threshold = threshold
    self.format_penalty = format_penalty
    self.prompt_suffix = prompt_suffix
    self.config = dict(config)
    self._scorers: dict = {}

  def generate(self, seed_or_rng: SeedOrRng, n: int, **difficulty) -> list[Example]:
    """``n`` entries of ``reasoning_gym.create_dataset(dataset, seed=seed, size=n, ...)``.

    A numpy Generator is turned into a seed by drawing one integer from it.
    """
    check_n(n)
    if n == 0:
      return []
    if isinstance(seed_or_rng, int):
      seed = seed_or_rng
    else:
      seed = int(as_rng(seed_or_rng).integers(0, 2**31 - 1))
    cfg = {**self.config, **difficulty}
    ds = self._rg.create_dataset(self.dataset, seed=seed, size=n, **cfg)
    out = []
    for i in range(n):
      entry = ds[i]
      meta = {
        "rg_config": cfg,
        "rg_seed": seed,
        "rg_index": i,
        "rg_metadata": copy.deepcopy(entry.get("metadata", {})),
      }
      answer = str(entry["answer"])
      out.append(
        Example(
          prompt=entry["question"], answer=answer, solution=wrap_answer(answer), metadata=meta
        )
      )
    return out

  def _scorer(self, cfg: dict):
    key = repr(sorted(cfg.items()))
    if key not in self._scorers:
      self._scorers[key] = self._rg.create_dataset(self.dataset, seed=0, size=1, **cfg)
    return self._scorers[key]

  def score(self, example: Example, completion: str) -> float | None:
    """``score_answer`` of the tagged answer in [0, 1]; None when there is none."""
    pred = extract_answer(completion)
    if pred is None:
      return None
    entry = {
      "question": example.prompt,
      "answer": example.answer,
      "metadata": copy.deepcopy(dict(example.metadata.get("rg_metadata", {}))),
    }
    try:
      score = self._scorer(dict(example.metadata.get("rg_config", self.config))).score_answer(
        pred, entry
      )
    except Exception:  # a scorer that chokes on odd text: no credit, never a crash
      return 0.0
    return float(score)

  def format_prompt(self, example: Example) -> str:
    return example.prompt + self.prompt_suffix

  def reward(self, example: Example, completion: str) -> float:
    score = self.score(example, completion)
    return self.format_penalty if score is None else score

  def is_correct(self, example: Example, completion: str) -> bool:
    score = self.score(example, completion)
    return score is not None and score >= self.threshold


__all__ = ["ReasoningGymTask", "reasoning_gym_names"]
