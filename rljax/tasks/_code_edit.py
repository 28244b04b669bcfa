"""``code_edit``: SWE-RL-style repair of small synthetic Python files.

Each problem is a few files of small functions, ``n_edits`` of which carry a bug described in an
issue-like instruction; the oracle edit fixes exactly those functions. The response format is
``<think>..</think><solution>..</solution>`` with SEARCH/REPLACE blocks and the reward is
:func:`rljax.rewards.swe_rl_reward` (Wei et al., arXiv 2502.18449).
"""

from __future__ import annotations

import string
from collections.abc import Callable

import numpy as np

from rljax import rewards
from rljax.tasks._base import Example, SeedOrRng, Task, as_rng, check_n

_NOUNS = "price score size count rate level speed total width depth cost load".split()
_VERBS = {
  "scale": "scale grow boost stretch".split(),
  "combine": "mix join merge blend".split(),
  "threshold": "over above past beyond".split(),
  "default": "shift offset bump nudge".split(),
}
_OP_NAMES = {"+": "add", "-": "subtract", "*": "multiply"}
_MODULES = "core utils stats mathx units rules calc model".split()


def _bug_scale(rng, name):
  right, wrong = (int(x) for x in rng.choice(np.arange(2, 10), size=2, replace=False))
  body = "def {n}(x):\n    return x * {c}\n"
  return dict(
    right=body.format(n=name, c=right),
    wrong=body.format(n=name, c=wrong),
    issue=f"`{name}(x)` should return x times {right}, but it returns x times {wrong}.",
    check=[[1], right],
  )


def _bug_combine(rng, name):
  right, wrong = (str(x) for x in rng.choice(["+", "-", "*"], size=2, replace=False))
  body = "def {n}(a, b):\n    return a {op} b\n"
  return dict(
    right=body.format(n=name, op=right),
    wrong=body.format(n=name, op=wrong),
    issue=f"`{name}(a, b)` should {_OP_NAMES[right]} a and b, but it computes a {wrong} b.",
    check=[[7, 3], {"+": 10, "-": 4, "*": 21}[right]],
  )


def _bug_threshold(rng, name):
  c = int(rng.integers(1, 10))
  right, wrong = (">=", ">") if rng.random() < 0.5 else (">", ">=")
  body = "def {n}(x):\n    if x {cmp} {c}:\n        return True\n    return False\n"
  expected = right == ">="
  return dict(
    right=body.format(n=name, cmp=right, c=c),
    wrong=body.format(n=name, cmp=wrong, c=c),
    issue=f"`{name}({c})` should return {expected}, but it returns {not expected}.",
    check=[[c], expected],
  )


def _bug_default(rng, name):
  right, wrong = (int(x) for x in rng.choice(np.arange(1, 10), size=2, replace=False))
  body = "def {n}(x, n={c}):\n    return x + n\n"
  return dict(
    right=body.format(n=name, c=right),
    wrong=body.format(n=name, c=wrong),
    issue=f"The default `n` of `{name}` should be {right}, not {wrong}.",
    check=[[0], right],
  )


_KINDS: dict[str, Callable] = {
  "scale": _bug_scale,
  "combine": _bug_combine,
  "threshold": _bug_threshold,
  "default": _bug_default,
}


class CodeEdit(Task):
  """Synthetic repository repair scored with the SWE-RL reward.

  Args:
    n_files: default number of files shown.
    functions_per_file: functions in each file.
    n_edits: default number of buggy functions to fix (the difficulty), placed in distinct
      functions of random files.
  """

  name = "code_edit"

  def __init__(self, *, n_files: int = 2, functions_per_file: int = 2, n_edits: int = 1):
    self._validate(n_files, functions_per_file, n_edits)
    self.n_files = n_files
    self.functions_per_file = functions_per_file
    self.n_edits = n_edits

  @staticmethod
  def _validate(n_files, functions_per_file, n_edits):
    if not 1 <= n_files <= len(_MODULES):
      raise ValueError(f"n_files must be in [1, {len(_MODULES)}], got {n_files}")
    if not 1 <= functions_per_file <= 4:
      raise ValueError(f"functions_per_file must be in [1, 4], got {functions_per_file}")
    if not 1 <= n_edits <= n_files * functions_per_file:
      raise ValueError(
        f"n_edits must be in [1, n_files * functions_per_file = "
        f"{n_files * functions_per_file}], got {n_edits}"
      )

  def generate(
    self,
    seed_or_rng: SeedOrRng,
    n: int,
    *,
    n_files: int | None = None,
    n_edits: int | None = None,
  ) -> list[Example]:
    """``n`` problems with exactly ``n_edits`` buggy functions over ``n_files`` files."""
    check_n(n)
    rng = as_rng(seed_or_rng)
    n_files = self.n_files if n_files is None else n_files
    n_edits = self.n_edits if n_edits is None else n_edits
    self._validate(n_files, self.functions_per_file, n_edits)
    return [self._make(rng, n_files, n_edits) for _ in range(n)]

  def _make(self, rng: np.random.Generator, n_files: int, n_edits: int) -> Example:
    n_funcs = n_files * self.functions_per_file
    kinds = [list(_KINDS)[int(i)] for i in rng.integers(len(_KINDS), size=n_funcs)]
    names, used = [], set()
    for kind in kinds:
      while True:
        verbs = _VERBS[kind]
        name = f"{verbs[int(rng.integers(len(verbs)))]}_{_NOUNS[int(rng.integers(len(_NOUNS)))]}"
        if name not in used:
          used.add(name)
          names.append(name)
          break
    funcs = [_KINDS[k](rng, nm) for k, nm in zip(kinds, names)]
    buggy = sorted(int(i) for i in rng.choice(n_funcs, size=n_edits, replace=False))
    modules = [str(m) for m in rng.choice(_MODULES, size=n_files, replace=False)]
    paths = [f"pkg/{m}.py" for m in modules]
    files, oracle, edits, thoughts, issues, checks = {}, {}, [], [], [], []
    for f, path in enumerate(paths):
      idx = range(f * self.functions_per_file, (f + 1) * self.functions_per_file)
      before = [funcs[i]["wrong"] if i in buggy else funcs[i]["right"] for i in idx]
      after = [funcs[i]["right"] for i in idx]
      files[path] = "\n\n".join(before)
      if before != after:
        oracle[path] = "\n\n".join(after)
      for i in idx:
        if i in buggy:
          edits.append(
            rewards.SearchReplace(
              path=path,
              search=funcs[i]["wrong"].rstrip("\n"),
              replace=funcs[i]["right"].rstrip("\n"),
            )
          )
          thoughts.append(f"`{names[i]}` is in {path}; fix it there.")
          issues.append(funcs[i]["issue"])
          checks.append(
            {
              "path": path,
              "func": names[i],
              "args": funcs[i]["check"][0],
              "expected": funcs[i]["check"][1],
            }
          )
    order = rng.permutation(len(issues))
    issues = [issues[int(i)] for i in order]
    listing = "\n".join(f"### {p}\n{files[p]}" for p in paths)
    prompt = "Issue:\n" + "\n".join(issues) + "\nFiles:\n" + listing
    patch = rewards.format_search_replace(edits)
    solution = f"<think>\n{' '.join(thoughts)}\n</think>\n<solution>\n{patch}\n</solution>"
    return Example(
      prompt=prompt,
      answer=patch,
      solution=solution,
      metadata={
        "n_files": n_files,
        "n_edits": n_edits,
        "files": files,
        "oracle_files": oracle,
        "checks": checks,
      },
    )

  def format_prompt(self, example: Example) -> str:
    return example.prompt + "\n"

  def alphabet(self) -> str:
    return "".join(sorted(set(string.printable) - set("\t\r\x0b\x0c")))

  def special_tokens(self) -> tuple[str, ...]:
    return (
      "<think>",
      "</think>",
      "<solution>",
      "</solution>",
      "<<<<<<< SEARCH",
      "=======",
      ">>>>>>> REPLACE",
    )

  def reward(self, example: Example, completion: str) -> float:
    """SWE-RL reward: -1 on a format error, else mean per-file diff similarity."""
    return rewards.swe_rl_reward(
      completion, example.metadata["files"], example.metadata["oracle_files"]
    )

  def is_correct(self, example: Example, completion: str) -> bool:
    """Well-formed, and the patched files equal the oracle's exactly."""
    files, oracle = example.metadata["files"], example.metadata["oracle_files"]
    details = rewards.swe_rl_reward_details(completion, files, oracle)
    if details["error"] is not None:
      return False
    return {**files, **details["pred_files"]} == {**files, **oracle}


__all__ = ["CodeEdit"]
