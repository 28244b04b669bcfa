"""countdown: determinism, exact number count, verifier."""

import pytest

from rljax.tasks import Countdown, Example, evaluate_expression

TASK = Countdown()


def test_deterministic_and_difficulty_exact():
  assert TASK.generate(0, 10) == TASK.generate(0, 10)
  for n_numbers in (2, 3, 6):
    for ex in TASK.generate(1, 10, n_numbers=n_numbers):
      assert len(ex.metadata["numbers"]) == n_numbers
      value, used = evaluate_expression(ex.answer)
      assert value == ex.metadata["target"] and 1 <= value <= TASK.max_target
      assert sorted(used) == sorted(ex.metadata["numbers"])
      assert TASK.reward(ex, ex.solution) == 1.0 and TASK.is_correct(ex, ex.solution)


def _hand():
  return Example(
    prompt="",
    answer="",
    solution="",
    metadata={"numbers": [25, 3, 7, 2], "target": 50, "n_numbers": 4},
  )


@pytest.mark.parametrize(
  "answer, reward",
  [
    ("25*2", 1.0),  # a subset is fine: each number at most once
    ("(7-2)*(3+7)", 0.0),  # 7 used twice
    ("25+25", 0.0),  # 25 used twice
    ("25*2+1", 0.0),  # 1 is not available
    ("25*3", 0.0),  # wrong value
    ("25/(7-7)", 0.0),  # division by zero
    ("25*", -1.0),  # unparseable
  ],
)
def test_verifier(answer, reward):
  ex = _hand()
  assert TASK.reward(ex, f"<answer>{answer}</answer>") == reward
  assert TASK.is_correct(ex, f"<answer>{answer}</answer>") == (reward == 1.0)


def test_missing_answer_gets_format_penalty():
  assert TASK.reward(_hand(), "25*2") == -1.0
