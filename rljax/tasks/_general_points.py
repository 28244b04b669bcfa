"""``general_points``: the 24 game of "SFT memorizes, RL generalizes" (arXiv 2501.17161).

Four cards from a 52-card deck, always solvable; reach 24 using each card's number exactly once
with + - * / and parentheses, evaluated with exact fractions (so ``8/(3-8/3)`` is 24). Rule
variants: J, Q, K count as 10 (in distribution) or as 11, 12, 13 (out of distribution, hands
with at least one face card). For a from-scratch model, which has no pre-training that could
teach it to read a rule, ``faces="random"`` draws J, Q, K's values per hand (1..13, never the
OOD triple 11 12 13), so a "base model" can learn to read the rule stated in the prompt
(``J=.. Q=.. K=..``) without ever seeing the OOD rule. Rewards follow the paper: +5 correct,
-1 legal but wrong value, -1 over the step limit (multi-turn), -2 numbers not among the cards,
-3 any other illegal equation (no answer, unparseable, division by zero).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
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

RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
SUITS = ("S", "H", "D", "C")
FACES = ("J", "Q", "K")
ID_FACES = (10, 10, 10)
OOD_FACES = (11, 12, 13)

REWARD_CORRECT = 5.0
REWARD_WRONG_VALUE = -1.0
REWARD_OVER_LIMIT = -1.0
REWARD_BAD_NUMBERS = -2.0
REWARD_ILLEGAL = -3.0

# One way to split a run of digits and spaces (numbers after the first need a space), so a long
# digit run with no closing "." fails in linear time; ``((?: *[0-9]+)+)`` backtracked
# exponentially (a sampled "Numbers: 1111...1" without a period hung an evaluation).
_NUMBERS_LINE = re.compile(r"Numbers:( *[0-9]+(?: +[0-9]+)*) *\.")


def card_value(rank: str, ood: bool | tuple[int, int, int]) -> int:
  """A=1, 2..10 face value; J, Q, K = 10 (``ood=False``), 11, 12, 13 (``ood=True``), or the
  values of a ``(J, Q, K)`` tuple."""
  faces = ood if isinstance(ood, tuple) else OOD_FACES if ood else ID_FACES
  if rank == "A":
    return 1
  if rank in FACES:
    return faces[FACES.index(rank)]
  return int(rank)


def _check_faces(faces):
  """``faces`` as given (None, "random") or as a tuple; ValueError naming it if invalid."""
  if faces is None or faces == "random":
    return faces
  if isinstance(faces, list):
    faces = tuple(faces)
  if (not isinstance(faces, tuple) or len(faces) != 3
      or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 13
                 for v in faces)):
    raise ValueError(f"faces must be None, 'random' or a tuple of three ints in 1..13 "
                     f"(J, Q, K), got {faces!r}")
  return faces


class GeneralPoints(Task):
  """The GeneralPoints card game (Chu et al., arXiv 2501.17161), text only.

  Args:
    target: the number to reach (24).
    ood: default rule: False = J/Q/K are 10, True = 11/12/13 with at least one face card.
      The prompt states the rule as ``J=.. Q=.. K=..``.
    max_turns: step limit for sequential revision (the paper uses 5).
  """

  name = "general_points"

  def __init__(self, *, target: int = 24, ood: bool = False, max_turns: int = 5):
    if max_turns < 1:
      raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    self.target = target
    self.ood = ood
    self.max_turns = max_turns

  def generate(
    self,
    seed_or_rng: SeedOrRng,
    n: int,
    *,
    ood: bool | None = None,
    require_face: bool | None = None,
    faces: str | tuple[int, int, int] | None = None,
  ) -> list[Example]:
    """``n`` solvable hands.

    Args:
      ood: the rule (J, Q, K = 10, or 11 12 13); defaults to the task's.
      require_face: only hands with a face card; defaults to True for ``ood`` or random faces.
      faces: override J, Q, K's values: a ``(J, Q, K)`` tuple of ints in 1..13, or
        ``"random"``: drawn per hand, uniform in 1..13 each, redrawn if they are the OOD
        triple (11, 12, 13), so a model trained on them never sees the OOD rule.
    """
    check_n(n)
    faces = _check_faces(faces)
    rng = as_rng(seed_or_rng)
    ood = self.ood if ood is None else ood
    if require_face is None:
      require_face = ood or faces == "random"
    deck = [r + s for r in RANKS for s in SUITS]
    out = []
    while len(out) < n:
      if faces == "random":
        hand_faces = OOD_FACES
        while hand_faces == OOD_FACES:
          hand_faces = tuple(int(v) for v in rng.integers(1, 14, size=3))
      else:
        hand_faces = faces or (OOD_FACES if ood else ID_FACES)
      idx = rng.choice(len(deck), size=4, replace=False)
      cards = [deck[int(i)] for i in idx]
      ranks = [c[:-1] for c in cards]
      if require_face and not any(r in FACES for r in ranks):
        continue
      numbers = [card_value(r, hand_faces) for r in ranks]
      tree = _expr.solve(numbers, self.target)
      if tree is None:
        continue
      out.append(self._make(cards, numbers, tree, hand_faces))
    return out

  def _make(self, cards, numbers, tree, faces) -> Example:
    answer = _expr.render(tree)
    rule = " ".join(f"{r}={v}" for r, v in zip(FACES, faces)) + "."
    prompt = (
      f"Cards: {' '.join(cards)}. {rule} Use each number once with + - * / ( ) to make "
      f"{self.target}."
    )
    lines = [f"Numbers: {' '.join(map(str, numbers))}.", *_expr.steps(tree), wrap_answer(answer)]
    return Example(
      prompt=prompt,
      answer=answer,
      solution="\n".join(lines),
      metadata={
        "cards": list(cards),
        "numbers": list(numbers),
        "ood": faces == OOD_FACES,
        "faces": list(faces),
        "target": self.target,
      },
    )

  def format_prompt(self, example: Example) -> str:
    return example.prompt + "\n"

  def alphabet(self) -> str:
    return "".join(sorted(set(string.ascii_letters + string.digits + "+-*/()=.,:;'<> \n")))

  def judge(self, example: Example, completion: str) -> tuple[float, str]:
    """The paper's reward for one attempt and the verifier's message."""
    eq = extract_answer(completion)
    if eq is None:
      return REWARD_ILLEGAL, "No equation found in <answer></answer>."
    if "=" in eq:  # allow "expr = 24"
      eq = eq.split("=")[0]
    try:
      value, used = _expr.evaluate(eq)
    except _expr.DivisionByZero:
      return REWARD_ILLEGAL, "Illegal equation: division by zero."
    except _expr.ExprError as e:
      return REWARD_ILLEGAL, f"Illegal equation: {e}."
    if sorted(used) != sorted(example.metadata["numbers"]):
      return REWARD_BAD_NUMBERS, (
        f"You used {' '.join(map(str, used))}; use each of "
        f"{' '.join(map(str, example.metadata['numbers']))} exactly once."
      )
    target = Fraction(example.metadata["target"])
    if value != target:
      return REWARD_WRONG_VALUE, (
        f"Your equation equals {_expr.format_fraction(value)}, not {example.metadata['target']}."
      )
    return REWARD_CORRECT, "Correct."

  def reward(self, example: Example, completion: str) -> float:
    return self.judge(example, completion)[0]

  def numbers_read(self, example: Example, completion: str) -> bool:
    """Whether the completion's first ``Numbers: ...`` line lists the hand's numbers, in card
    order, under the prompt's rule: the rule-following probe of the SFT-vs-RL study (the
    analogue of the paper's card-recognition accuracy), independent of solving the hand."""
    m = _NUMBERS_LINE.search(completion)
    return m is not None and [int(x) for x in m.group(1).split()] == example.metadata["numbers"]

  def is_correct(self, example: Example, completion: str) -> bool:
    return self.judge(example, completion)[0] == REWARD_CORRECT

  def verifier_message(self, example: Example, completion: str) -> str:
    return self.judge(example, completion)[1]

  def revision_prompt(self, example: Example, attempts: Sequence[str]) -> str:
    """The prompt for the next turn: the question, each attempt and the verifier's reply."""
    parts = [self.format_prompt(example)]
    for attempt in attempts:
      parts.append(f"{attempt}\nVerifier: {self.verifier_message(example, attempt)}\n")
    return "".join(parts)

  def episode_reward(self, example: Example, attempts: Sequence[str]) -> float:
    """Reward of a multi-turn episode: -1 past ``max_turns`` attempts, else the last attempt's."""
    if not attempts:
      raise ValueError("attempts must be non-empty")
    if len(attempts) > self.max_turns:
      return REWARD_OVER_LIMIT
    return self.reward(example, attempts[-1])


__all__ = [
  "REWARD_BAD_NUMBERS",
  "REWARD_CORRECT",
  "REWARD_ILLEGAL",
  "REWARD_OVER_LIMIT",
  "REWARD_WRONG_VALUE",
  "GeneralPoints",
  "card_value",
]
