"""general_points: solvable hands, rule variants, the paper's reward table, multi-turn."""

import time
from fractions import Fraction

import pytest

from rljax.tasks import (
  REWARD_BAD_NUMBERS,
  REWARD_CORRECT,
  REWARD_ILLEGAL,
  REWARD_OVER_LIMIT,
  REWARD_WRONG_VALUE,
  Example,
  GeneralPoints,
  card_value,
  evaluate_expression,
  solve_expression,
)

TASK = GeneralPoints()


def test_deterministic_and_always_solvable():
  a = TASK.generate(0, 20)
  assert a == TASK.generate(0, 20) and a != TASK.generate(1, 20)
  for ex in a + TASK.generate(0, 20, ood=True):
    value, used = evaluate_expression(ex.answer)
    assert value == 24 and sorted(used) == sorted(ex.metadata["numbers"])
    assert len(ex.metadata["cards"]) == 4 and len(set(ex.metadata["cards"])) == 4


def test_rule_variants():
  assert [card_value(r, False) for r in "AJQK"] == [1, 10, 10, 10]
  assert [card_value(r, True) for r in "AJQK"] == [1, 11, 12, 13]
  for ex in TASK.generate(3, 20, ood=True):
    ranks = [c[:-1] for c in ex.metadata["cards"]]
    assert any(r in "JQK" for r in ranks), "OOD hands hold at least one face card"
    assert ex.metadata["numbers"] == [card_value(r, True) for r in ranks]
    assert "J=11 Q=12 K=13." in ex.prompt and ex.metadata["ood"]
  for ex in TASK.generate(3, 20):
    assert max(ex.metadata["numbers"]) <= 10 and "J=10 Q=10 K=10." in ex.prompt
    assert not ex.metadata["ood"]


def test_random_faces_state_their_rule_and_never_the_ood_one():
  hands = TASK.generate(5, 300, faces="random")
  assert hands == TASK.generate(5, 300, faces="random")
  seen = set()
  for ex in hands:
    faces = tuple(ex.metadata["faces"])
    seen.add(faces)
    assert faces != (11, 12, 13) and not ex.metadata["ood"]
    assert f"J={faces[0]} Q={faces[1]} K={faces[2]}." in ex.prompt
    ranks = [c[:-1] for c in ex.metadata["cards"]]
    assert any(r in "JQK" for r in ranks), "random rules hold a face card by default"
    assert ex.metadata["numbers"] == [card_value(r, faces) for r in ranks]
    value, used = evaluate_expression(ex.answer)
    assert value == 24 and sorted(used) == sorted(ex.metadata["numbers"])
  assert len(seen) > 200, "the rules vary from hand to hand"
  fixed = TASK.generate(0, 5, faces=(1, 2, 3))
  assert all(ex.metadata["faces"] == [1, 2, 3] and "J=1 Q=2 K=3." in ex.prompt for ex in fixed)
  assert TASK.generate(0, 5, faces=[1, 2, 3]) == fixed  # a list (JSON configs) works too


def test_numbers_read_probe():
  ex = TASK.generate(0, 1, faces=(11, 12, 13))[0]
  assert TASK.numbers_read(ex, ex.solution)
  nums = ex.metadata["numbers"]
  assert TASK.numbers_read(ex, "Numbers:  " + "  ".join(map(str, nums)) + " .\nwhatever")
  wrong = [10 if v in (11, 12, 13) else v for v in nums]
  assert not TASK.numbers_read(ex, "Numbers: " + " ".join(map(str, wrong)) + ".")
  assert not TASK.numbers_read(ex, "Numbers: " + " ".join(map(str, nums[:3])) + ".")
  assert not TASK.numbers_read(ex, "<answer>" + ex.answer + "</answer>")
  assert TASK.numbers_read(ex, "Numbers:" + " ".join(map(str, nums)) + ".")  # no space after ":"
  assert not TASK.numbers_read(ex, "Numbers: " + "".join(map(str, nums)) + ".")  # one number


def test_numbers_read_is_linear_on_a_long_digit_run():
  # A sampled "Numbers: 111...1" with no closing period: the probe's old pattern backtracked
  # over every split of the digits (2^n; 40 digits would take hours).
  ex = TASK.generate(0, 1)[0]
  start = time.perf_counter()
  for n in (40, 400, 4000):
    assert not TASK.numbers_read(ex, "Numbers: " + "1" * n + " 2" * n)
  assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("faces", ["rand", (10, 10), (0, 1, 2), (1, 2, 14), (1.0, 2, 3)])
def test_bad_faces_name_the_argument(faces):
  with pytest.raises(ValueError, match="faces"):
    TASK.generate(0, 1, faces=faces)


def _hand(numbers=(8, 3, 8, 3)):
  return Example(
    prompt="",
    answer="8/(3-8/3)",
    solution="",
    metadata={"cards": [], "numbers": list(numbers), "ood": False, "target": 24},
  )


@pytest.mark.parametrize(
  "answer, reward",
  [
    ("8/(3-8/3)", REWARD_CORRECT),  # exact fractions: 3 - 8/3 = 1/3
    ("8 / (3 - 8 / 3) = 24", REWARD_CORRECT),  # spaces and a stated result are fine
    ("8*3+8-3", REWARD_WRONG_VALUE),  # legal, 29
    ("(8+3)*(8-3)", REWARD_WRONG_VALUE),  # legal, 55
    ("8*3", REWARD_BAD_NUMBERS),  # not all cards used
    ("8*3*1*1", REWARD_BAD_NUMBERS),  # numbers not among the cards
    ("8/(3-8/3)+8", REWARD_BAD_NUMBERS),  # a card used twice
    ("8/(3-3)+8*3", REWARD_ILLEGAL),  # division by zero
    ("8*(3+8-3", REWARD_ILLEGAL),  # unbalanced
    ("8^3-8-3", REWARD_ILLEGAL),  # illegal operator
    ("-8+3*8+3", REWARD_ILLEGAL),  # no unary minus
    ("eight", REWARD_ILLEGAL),
  ],
)
def test_reward_table(answer, reward):
  ex = _hand()
  assert TASK.reward(ex, f"<answer>{answer}</answer>") == reward
  assert TASK.is_correct(ex, f"<answer>{answer}</answer>") == (reward == REWARD_CORRECT)


def test_missing_answer_is_illegal():
  assert TASK.reward(_hand(), "8/(3-8/3)") == REWARD_ILLEGAL
  assert TASK.reward(_hand(), "") == REWARD_ILLEGAL


def test_paper_reward_values():
  assert (REWARD_CORRECT, REWARD_WRONG_VALUE, REWARD_OVER_LIMIT) == (5.0, -1.0, -1.0)
  assert (REWARD_BAD_NUMBERS, REWARD_ILLEGAL) == (-2.0, -3.0)


def test_multi_turn_revision_and_step_limit():
  task = GeneralPoints(max_turns=5)
  ex = _hand()
  wrong, right = "<answer>8*3+8-3</answer>", "<answer>8/(3-8/3)</answer>"
  assert task.episode_reward(ex, [wrong, right]) == REWARD_CORRECT
  assert task.episode_reward(ex, [wrong] * 5) == REWARD_WRONG_VALUE
  assert task.episode_reward(ex, [wrong] * 5 + [right]) == REWARD_OVER_LIMIT
  prompt = task.revision_prompt(ex, [wrong])
  assert wrong in prompt and "Verifier: Your equation equals 29, not 24." in prompt


def test_solver():
  assert solve_expression([1, 1, 1, 1]) is None
  assert evaluate_expression("8/(3-8/3)")[0] == Fraction(24)
  from rljax.tasks._expr import render

  tree = solve_expression([8, 3, 8, 3])
  assert evaluate_expression(render(tree))[0] == 24


def test_reference_solution_is_accepted():
  for ex in TASK.generate(5, 10) + TASK.generate(5, 10, ood=True):
    assert TASK.reward(ex, ex.solution) == REWARD_CORRECT
    assert TASK.sft_target(ex).endswith(f"<answer>{ex.answer}</answer>")
