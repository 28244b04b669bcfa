"""The task protocol shared by every verifiable task: examples, answer tags, seeding."""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

_ANSWER_RE = re.compile(re.escape(ANSWER_OPEN) + r"(.*?)" + re.escape(ANSWER_CLOSE), re.DOTALL)

SeedOrRng = int | np.random.Generator


@dataclasses.dataclass(frozen=True)
class Example:
  """One problem with a checkable answer.

  Attributes:
    prompt: the problem statement (tasks' ``format_prompt`` renders what the model sees).
    answer: the reference answer, as text.
    solution: a worked SFT target that ends with the answer in the task's answer format.
    metadata: difficulty and whatever the verifier needs (JSON-compatible values).
  """

  prompt: str
  answer: str
  solution: str
  metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

  def __post_init__(self):
    for field in ("prompt", "answer", "solution"):
      if not isinstance(getattr(self, field), str):
        raise TypeError(f"Example.{field} must be a str, got {type(getattr(self, field))}")
    if not isinstance(self.metadata, Mapping):
      raise TypeError(f"Example.metadata must be a Mapping, got {type(self.metadata)}")


def as_rng(seed_or_rng: SeedOrRng) -> np.random.Generator:
  """A numpy Generator from an int seed (deterministic) or an existing Generator."""
  if isinstance(seed_or_rng, np.random.Generator):
    return seed_or_rng
  if isinstance(seed_or_rng, (int, np.integer)) and not isinstance(seed_or_rng, bool):
    return np.random.default_rng(int(seed_or_rng))
  raise TypeError(f"seed_or_rng must be an int or a numpy Generator, got {type(seed_or_rng)}")


def wrap_answer(answer: str) -> str:
  """``<answer>answer</answer>``."""
  return f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def extract_answer(completion: str) -> str | None:
  """The text inside the last ``<answer>...</answer>`` pair, stripped; None when absent."""
  found = _ANSWER_RE.findall(completion)
  if not found:
    return None
  return found[-1].strip()


def check_n(n: int) -> None:
  if not isinstance(n, (int, np.integer)) or n < 0:
    raise ValueError(f"n must be a non-negative int, got {n!r}")


class Task(abc.ABC):
  """A verifiable task.

  ``generate`` is deterministic per seed; ``reward`` may be shaped, while ``is_correct`` is the
  strict pass/fail used for pass@k. Neither raises on a malformed completion: an unparseable one
  gets the task's format penalty and counts as incorrect.
  """

  name: str = "task"

  @abc.abstractmethod
  def generate(self, seed_or_rng: SeedOrRng, n: int, **difficulty) -> list[Example]:
    """``n`` examples, deterministic for an int seed."""

  def format_prompt(self, example: Example) -> str:
    """The text the model sees."""
    return example.prompt

  @abc.abstractmethod
  def reward(self, example: Example, completion: str) -> float:
    """Scalar reward of one completion."""

  @abc.abstractmethod
  def is_correct(self, example: Example, completion: str) -> bool:
    """Strict correctness of one completion."""

  def sft_target(self, example: Example) -> str:
    """The completion text to train on with SFT."""
    return example.solution

  def alphabet(self) -> str:
    """Every character prompts and solutions can contain ("" when unbounded: use BPE)."""
    return ""

  def special_tokens(self) -> tuple[str, ...]:
    """Multi-character tags a character tokenizer should keep as single tokens."""
    return (ANSWER_OPEN, ANSWER_CLOSE)

  def rewards(self, examples: list[Example], completions: list[str]) -> np.ndarray:
    """``[B]`` float32 rewards of a batch (row i: example i, completion i)."""
    if len(examples) != len(completions):
      raise ValueError(f"{len(examples)} examples but {len(completions)} completions")
    return np.asarray([self.reward(e, c) for e, c in zip(examples, completions)], np.float32)

  def __repr__(self) -> str:
    return f"{type(self).__name__}(name={self.name!r})"
