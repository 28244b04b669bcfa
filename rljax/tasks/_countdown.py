"""``countdown``: reach a target from given numbers, each used at most once (TinyZero-style)."""

from __future__ import annotations

import string
from collections import Counter
from fractions import Fraction

from rljax.tasks import _expr
from rljax.tasks._base import (
  Example,
  SeedOrRng,
  Task,
  as_rng,
  check_n,
  extract_answer,
  wrap_answer,
)


class Countdown(Task):
  """Countdown: combine the numbers with + - * / ( ) to hit the target, each at most once.

  Problems are built by combining all ``n_numbers`` numbers in a random order with random
  operations whose intermediate results stay non-negative integers, so each is solvable and
  the construction is the worked solution.

  Args:
    n_numbers: default count of numbers (the difficulty).
    max_number: numbers are drawn from ``[1, max_number]``.
    max_target: targets lie in ``[1, max_target]``.
    correct_reward, wrong_reward, format_penalty: for a correct expression, a parseable wrong
      one (wrong value, numbers not available, division by zero), and no parseable answer.
  """

  name = "countdown"

  def __init__(
    self,
    *,
    n_numbers: int = 4,
    max_number: int = 25,
    max_target: int = 100,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    format_penalty: float = -1.0,
  ):
    if n_numbers < 2:
      raise ValueError(f"n_numbers must be >= 2, got {n_numbers}")
    if max_number < 1 or max_target < 1:
      raise ValueError(f"max_number and max_target must be >= 1, got {max_number}, {max_target}")
    self.n_numbers = n_numbers
    self.max_number = max_number
    self.max_target = max_target
    self.correct_reward = correct_reward
    self.wrong_reward = wrong_reward
    self.format_penalty = format_penalty

  def generate(
    self, seed_or_rng: SeedOrRng, n: int, *, n_numbers: int | None = None
  ) -> list[Example]:
    """``n`` solvable problems with exactly ``n_numbers`` numbers."""
    check_n(n)
    rng = as_rng(seed_or_rng)
    count = self.n_numbers if n_numbers is None else n_numbers
    if count < 2:
      raise ValueError(f"n_numbers must be >= 2, got {count}")
    out = []
    while len(out) < n:
      numbers = [int(x) for x in rng.integers(1, self.max_number + 1, size=count)]
      items: list[_expr.Tree] = list(numbers)
      while len(items) > 1:
        i, j = (int(x) for x in rng.choice(len(items), size=2, replace=False))
        a, b = items[i], items[j]
        x, y = _expr.tree_value(a), _expr.tree_value(b)
        ops = ["+", "*"]
        if x != y:
          ops.append("-")
        if y != 0 and (x / y).denominator == 1 and y != 1:
          ops.append("/")
        op = ops[int(rng.integers(len(ops)))]
        if op == "-" and x < y:
          a, b = b, a
        items = [t for m, t in enumerate(items) if m not in (i, j)] + [(op, a, b)]
      tree = items[0]
      target = _expr.tree_value(tree)
      if not 1 <= target <= self.max_target or target in numbers:
        continue
      out.append(self._make(numbers, tree, int(target)))
    return out

  def _make(self, numbers, tree, target) -> Example:
    answer = _expr.render(tree)
    nums = " ".join(map(str, numbers))
    prompt = f"Numbers: {nums}. Target: {target}. Use each number at most once with + - * / ( )."
    return Example(
      prompt=prompt,
      answer=answer,
      solution="\n".join([*_expr.steps(tree), wrap_answer(answer)]),
      metadata={"numbers": list(numbers), "target": target, "n_numbers": len(numbers)},
    )

  def format_prompt(self, example: Example) -> str:
    return example.prompt + "\n"

  def alphabet(self) -> str:
    return "".join(sorted(set(string.ascii_letters + string.digits + "+-*/()=.,: \n")))

  def verdict(self, example: Example, completion: str) -> str:
    """ "correct", "wrong" (parseable: wrong value, unavailable numbers, x/0) or "format"."""
    eq = extract_answer(completion)
    if eq is None:
      return "format"
    if "=" in eq:  # allow "expr = target"
      eq = eq.split("=")[0]
    try:
      value, used = _expr.evaluate(eq)
    except _expr.DivisionByZero:
      return "wrong"
    except _expr.ExprError:
      return "format"
    if Counter(used) - Counter(example.metadata["numbers"]):
      return "wrong"
    return "correct" if value == Fraction(example.metadata["target"]) else "wrong"

  def reward(self, example: Example, completion: str) -> float:
    return {
      "correct": self.correct_reward,
      "wrong": self.wrong_reward,
      "format": self.format_penalty,
    }[self.verdict(example, completion)]

  def is_correct(self, example: Example, completion: str) -> bool:
    return self.verdict(example, completion) == "correct"


__all__ = ["Countdown"]
