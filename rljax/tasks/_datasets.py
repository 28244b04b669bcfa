"""The user's own data (JSONL, Parquet, a saved ``datasets.Dataset``) and export of any task.

Rows need a prompt and an answer column (names configurable); a ``solution`` column is used for
SFT when present and a ``metadata`` column (a dict or a JSON string) is kept. A malformed row is
reported with its file and line (or row) number; nothing is silently dropped.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Literal

import numpy as np

from rljax.tasks._base import (
  Example,
  SeedOrRng,
  Task,
  as_rng,
  check_n,
  extract_answer,
  wrap_answer,
)

_BOXED_RE = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


class MalformedDataError(ValueError):
  """One or more rows could not be read; the message lists each as ``file:line: reason``."""


# ----------------------------------------------------------------------------- export / import


def to_hf_dataset(examples: Sequence[Example]):
  """A ``datasets.Dataset`` with columns prompt, answer, solution, metadata (JSON text).

  Metadata is stored as JSON so rows with different metadata share one Arrow schema; values
  JSON cannot hold are written with ``str`` (tuples come back as lists).
  """
  import datasets

  return datasets.Dataset.from_dict(
    {
      "prompt": [e.prompt for e in examples],
      "answer": [e.answer for e in examples],
      "solution": [e.solution for e in examples],
      "metadata": [json.dumps(dict(e.metadata), sort_keys=True, default=str) for e in examples],
    }
  )


def from_hf_dataset(dataset, source: str = "<dataset>", **column_names) -> list[Example]:
  """Examples from a ``datasets.Dataset`` (inverse of :func:`to_hf_dataset`).

  ``column_names`` may rename ``prompt_key``, ``answer_key``, ``solution_key``, ``metadata_key``.
  """
  rows = (dict(r) for r in dataset)
  return _rows_to_examples(((f"{source}: row {i}", r) for i, r in enumerate(rows)), **column_names)


def write_jsonl(examples: Sequence[Example], path: str | os.PathLike) -> None:
  """Write examples as JSON lines with keys prompt, answer, solution, metadata."""
  with open(path, "w", encoding="utf-8") as f:
    for e in examples:
      row = {
        "prompt": e.prompt,
        "answer": e.answer,
        "solution": e.solution,
        "metadata": dict(e.metadata),
      }
      f.write(json.dumps(row, sort_keys=True, default=str) + "\n")


def _rows_to_examples(
  located_rows,
  *,
  prompt_key: str = "prompt",
  answer_key: str = "answer",
  solution_key: str | None = "solution",
  metadata_key: str | None = "metadata",
) -> list[Example]:
  examples, errors = [], []
  for where, row in located_rows:
    if isinstance(row, _BadJson):
      errors.append(f"{where}: invalid JSON ({row.msg})")
      continue
    if not isinstance(row, dict):
      errors.append(f"{where}: expected an object, got {type(row).__name__}")
      continue
    missing = [k for k in (prompt_key, answer_key) if row.get(k) is None]
    if missing:
      errors.append(f"{where}: missing {', '.join(repr(k) for k in missing)}")
      continue
    prompt, answer = row[prompt_key], row[answer_key]
    if not isinstance(prompt, str):
      errors.append(f"{where}: {prompt_key!r} must be a string, got {type(prompt).__name__}")
      continue
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
      answer = str(answer)
    if not isinstance(answer, str):
      errors.append(f"{where}: {answer_key!r} must be a string or number")
      continue
    solution = row.get(solution_key) if solution_key else None
    if solution is None:
      solution = wrap_answer(answer)
    if not isinstance(solution, str):
      errors.append(f"{where}: {solution_key!r} must be a string")
      continue
    meta = row.get(metadata_key) if metadata_key else None
    if isinstance(meta, str):
      try:
        meta = json.loads(meta)
      except json.JSONDecodeError as e:
        errors.append(f"{where}: {metadata_key!r} is not valid JSON ({e})")
        continue
    if meta is None:
      meta = {}
    if not isinstance(meta, dict):
      errors.append(f"{where}: {metadata_key!r} must be an object")
      continue
    examples.append(Example(prompt=prompt, answer=answer, solution=solution, metadata=meta))
  if errors:
    shown = "\n  ".join(errors[:50])
    more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
    raise MalformedDataError(f"{len(errors)} malformed row(s):\n  {shown}{more}")
  return examples


def _jsonl_rows(path: str):
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, start=1):
      if not line.strip():
        continue
      where = f"{path}:{lineno}"
      try:
        yield where, json.loads(line)
      except json.JSONDecodeError as e:
        yield where, _BadJson(str(e))


class _BadJson:
  def __init__(self, msg):
    self.msg = msg


def load_examples(
  path: str | os.PathLike,
  *,
  prompt_key: str = "prompt",
  answer_key: str = "answer",
  solution_key: str | None = "solution",
  metadata_key: str | None = "metadata",
) -> list[Example]:
  """Read examples from ``.jsonl``/``.json`` lines, ``.parquet``, or a ``save_to_disk`` folder.

  Raises:
    MalformedDataError: listing every malformed row as ``file:line: reason``.
    FileNotFoundError: when ``path`` does not exist.
  """
  path = os.fspath(path)
  keys = dict(
    prompt_key=prompt_key,
    answer_key=answer_key,
    solution_key=solution_key,
    metadata_key=metadata_key,
  )
  if not os.path.exists(path):
    raise FileNotFoundError(f"no data at {path}")
  if os.path.isdir(path):
    import datasets

    ds = datasets.load_from_disk(path)
    if isinstance(ds, datasets.DatasetDict):
      raise ValueError(f"{path} holds a DatasetDict {list(ds)}; point at one split's folder")
    return from_hf_dataset(ds, source=path, **keys)
  if path.endswith(".parquet"):
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    return _rows_to_examples(((f"{path}: row {i}", r) for i, r in enumerate(rows)), **keys)
  if path.endswith((".jsonl", ".json")):
    return _rows_to_examples(_jsonl_rows(path), **keys)
  raise ValueError(f"unsupported data file {path!r}: use .jsonl, .json, .parquet or a folder")


# ----------------------------------------------------------------------------- answer checkers


def _to_number(text: str) -> Fraction | float | None:
  text = text.strip().rstrip(".").replace(",", "").replace("$", "").strip()
  if text.endswith("%"):
    text = text[:-1]
  try:
    return Fraction(text)
  except (ValueError, ZeroDivisionError):
    pass
  try:
    x = float(text)
  except ValueError:
    return None
  return x if math.isfinite(x) else None


def check_exact(pred: str, gold: str) -> bool:
  """Equal after stripping surrounding whitespace."""
  return pred.strip() == gold.strip()


def check_numeric(pred: str, gold: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
  """Both parse as numbers (fractions, decimals; commas, $ and % ignored) and are close."""
  p, g = _to_number(pred), _to_number(gold)
  if p is None or g is None:
    return False
  if isinstance(p, Fraction) and isinstance(g, Fraction):
    return p == g
  return math.isclose(float(p), float(g), rel_tol=rel_tol, abs_tol=abs_tol)


def check_math_verify(pred: str, gold: str) -> bool:
  """Symbolic equivalence with the ``math-verify`` package (``pip install math-verify``)."""
  try:
    from math_verify import parse, verify
  except ImportError as e:
    raise ImportError("checker='math_verify' needs `pip install math-verify`") from e
  try:
    gold_p = parse(gold if "$" in gold or "\\" in gold else f"${gold}$")
    pred_p = parse(pred if "$" in pred or "\\" in pred else f"${pred}$")
    return bool(verify(gold_p, pred_p))
  except Exception:  # math-verify raises on exotic input; a non-match, never a crash
    return False


CHECKERS: dict[str, Callable[[str, str], bool]] = {
  "exact": check_exact,
  "numeric": check_numeric,
  "math_verify": check_math_verify,
}


def extract(completion: str, answer_format: str) -> str | None:
  """The answer text of a completion: inside ``<answer>`` tags, the last ``\\boxed{}``, the last
  number, or the whole completion (``"raw"``)."""
  if answer_format == "tag":
    return extract_answer(completion)
  if answer_format == "boxed":
    found = _BOXED_RE.findall(completion)
    return found[-1].strip() if found else None
  if answer_format == "last_number":
    found = _NUMBER_RE.findall(completion)
    return found[-1] if found else None
  if answer_format == "raw":
    return completion.strip()
  raise ValueError(f"answer_format must be tag, boxed, last_number or raw, got {answer_format!r}")


class DatasetTask(Task):
  """A task over fixed examples (the user's data) with a configurable answer checker.

  Args:
    examples: the problems (see :func:`load_examples`).
    checker: "exact", "numeric", "math_verify", or a callable ``(pred, gold) -> bool``.
    answer_format: where the answer is in a completion: "tag" (``<answer>..</answer>``),
      "boxed", "last_number" or "raw".
    prompt_template: ``str.format`` template with ``{prompt}`` for what the model sees.
    correct_reward, wrong_reward, format_penalty: rewards for a match, a non-match, and no
      extractable answer.
    name: the task's name.
  """

  def __init__(
    self,
    examples: Sequence[Example],
    *,
    checker: Literal["exact", "numeric", "math_verify"] | Callable[[str, str], bool] = "exact",
    answer_format: Literal["tag", "boxed", "last_number", "raw"] = "tag",
    prompt_template: str = "{prompt}\n",
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    format_penalty: float = -1.0,
    name: str = "dataset",
  ):
    if isinstance(checker, str):
      if checker not in CHECKERS:
        raise ValueError(
          f"checker must be one of {sorted(CHECKERS)} or a callable, got {checker!r}"
        )
      if checker == "math_verify":
        check_math_verify("1", "1")  # fail early when math-verify is missing
      self.check = CHECKERS[checker]
    elif callable(checker):
      self.check = checker
    else:
      raise TypeError(f"checker must be a name or a callable, got {type(checker)}")
    extract("", answer_format)  # validate
    if "{prompt}" not in prompt_template:
      raise ValueError(f"prompt_template must contain '{{prompt}}', got {prompt_template!r}")
    self.examples = list(examples)
    self.answer_format = answer_format
    self.prompt_template = prompt_template
    self.correct_reward = correct_reward
    self.wrong_reward = wrong_reward
    self.format_penalty = format_penalty
    self.name = name

  @classmethod
  def from_path(cls, path: str | os.PathLike, *, column_names: dict | None = None, **kwargs):
    """Load ``path`` (:func:`load_examples`) and build the task (``name`` = the path)."""
    kwargs.setdefault("name", f"dataset:{os.fspath(path)}")
    return cls(load_examples(path, **(column_names or {})), **kwargs)

  def __len__(self) -> int:
    return len(self.examples)

  def generate(self, seed_or_rng: SeedOrRng, n: int) -> list[Example]:
    """``n`` examples in a seeded order: a permutation, repeated (reshuffled) past one epoch."""
    check_n(n)
    if n and not self.examples:
      raise ValueError(f"task {self.name!r} has no examples")
    rng = as_rng(seed_or_rng)
    idx: list[int] = []
    while len(idx) < n:
      idx.extend(int(i) for i in rng.permutation(len(self.examples)))
    return [self.examples[i] for i in np.asarray(idx[:n], dtype=np.int64)]

  def format_prompt(self, example: Example) -> str:
    return self.prompt_template.format(prompt=example.prompt)

  def is_correct(self, example: Example, completion: str) -> bool:
    pred = extract(completion, self.answer_format)
    return pred is not None and bool(self.check(pred, example.answer))

  def reward(self, example: Example, completion: str) -> float:
    pred = extract(completion, self.answer_format)
    if pred is None:
      return self.format_penalty
    return self.correct_reward if self.check(pred, example.answer) else self.wrong_reward


def task_to_hf_dataset(task: Task, seed: int, n: int, **difficulty):
  """Generate ``n`` examples of ``task`` and export them (:func:`to_hf_dataset`)."""
  return to_hf_dataset(task.generate(seed, n, **difficulty))


__all__ = [
  "CHECKERS",
  "DatasetTask",
  "MalformedDataError",
  "check_exact",
  "check_math_verify",
  "check_numeric",
  "extract",
  "from_hf_dataset",
  "load_examples",
  "task_to_hf_dataset",
  "to_hf_dataset",
  "write_jsonl",
]
