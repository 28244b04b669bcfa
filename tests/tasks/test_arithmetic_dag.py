"""arithmetic_dag: determinism, exact difficulty, answer and process verifiers."""

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from rljax.tasks import ARITHMETIC_TEMPLATES, ArithmeticDAG, Example, count_operations

TASK = ArithmeticDAG()


def test_deterministic_per_seed():
  assert TASK.generate(3, 8, k=5) == TASK.generate(3, 8, k=5)
  assert TASK.generate(3, 8, k=5) != TASK.generate(4, 8, k=5)
  a = TASK.generate(np.random.default_rng(7), 4)
  assert a == TASK.generate(np.random.default_rng(7), 4)


@pytest.mark.parametrize("k", [1, 2, 7, 22])
def test_difficulty_is_exactly_k(k):
  for ex in TASK.generate(k, 12, k=k):
    assert ex.metadata["k"] == k
    assert count_operations(ex.metadata) == k
    # the asked quantity depends on every quantity: no distractors
    assert ex.metadata["target"] == len(ex.metadata["nodes"]) - 1
    assert sum(n["op"] is not None for n in ex.metadata["nodes"]) == k


def test_k_range_and_validation():
  ks = {ex.metadata["k"] for ex in TASK.generate(0, 40, k=(2, 4))}
  assert ks == {2, 3, 4}
  with pytest.raises(ValueError, match="k must"):
    TASK.generate(0, 1, k=0)
  with pytest.raises(ValueError, match="k must"):
    ArithmeticDAG(k=99)


def test_templates_can_be_fixed_or_held_out():
  assert {e.metadata["template"] for e in TASK.generate(0, 10, template="zoo")} == {"zoo"}
  train = ArithmeticDAG(templates=["symbolic", "shop"])
  assert {e.metadata["template"] for e in train.generate(0, 30)} <= {"symbolic", "shop"}
  with pytest.raises(ValueError, match="unknown template"):
    TASK.generate(0, 1, template="nope")
  # same seed, different context: same DAG, different surface
  zoo, city = TASK.generate(5, 1, template="zoo")[0], TASK.generate(5, 1, template="city")[0]
  assert zoo.answer == city.answer and zoo.prompt != city.prompt


@pytest.mark.parametrize("template", sorted(ARITHMETIC_TEMPLATES))
def test_reference_solution_is_accepted(template):
  strict = ArithmeticDAG(require_process=True)
  for ex in TASK.generate(1, 10, k=(1, 8), template=template):
    assert TASK.process_check(ex, ex.solution)
    assert strict.is_correct(ex, ex.solution)
    assert TASK.reward(ex, ex.solution) == 1.0


def test_perturbed_answers_are_rejected():
  for ex in TASK.generate(2, 10, k=4):
    wrong = str((int(ex.answer) + 1) % 10)
    bad = ex.solution.replace(f"<answer>{ex.answer}</answer>", f"<answer>{wrong}</answer>")
    assert not TASK.is_correct(ex, bad)
    assert TASK.reward(ex, bad) == 0.0
    assert TASK.reward(ex, "no answer here") == -1.0
    assert TASK.reward(ex, "<answer>seven</answer>") == -1.0


def _hand_example():
  # a = 3, b = 4, c = a * b (mod 10) = 2, d = c - 5 = 7
  nodes = [
    {"name": "a", "op": None, "args": [], "value": 3},
    {"name": "b", "op": None, "args": [], "value": 4},
    {"name": "c", "op": "*", "args": [["node", 0], ["node", 1]], "value": 2},
    {"name": "d", "op": "-", "args": [["node", 2], ["const", 5]], "value": 7},
  ]
  meta = {"k": 2, "template": "symbolic", "modulus": 10, "target": 3, "nodes": nodes}
  return Example(
    prompt="Work mod 10. a = 3. b = 4. c = a * b. d = c - 5. Find d.",
    answer="7",
    solution="",
    metadata=meta,
  )


def test_process_check_hand_worked():
  ex = _hand_example()
  good = "a = 3.\nb = 4.\nc = a * b = 3 * 4 = 2.\nd = c - 5 = 2 - 5 = 7.\n<answer>7</answer>"
  assert count_operations(ex.metadata) == 2
  assert TASK.process_check(ex, good)
  assert TASK.process_check(ex, good.replace("a * b = 3 * 4", "b * a = 4 * 3"))  # commutes
  for bad in [
    good.replace("= 3 * 4 = 2", "= 3 * 4 = 12"),  # arithmetic not reduced
    good.replace("= 3 * 4 = 2", "= 3 * 4 = 3"),  # wrong product
    good.replace("d = c - 5 = 2 - 5", "d = 5 - c = 5 - 2"),  # minus does not commute
    good.replace("a = 3.", "a = 4."),  # wrong given value
    good.replace("c = a * b", "c = a + b"),  # wrong operation
    good.replace("c = a * b = 3 * 4 = 2.\n", ""),  # uses a quantity never computed
    good.replace("d = c - 5 = 2 - 5 = 7.\n", ""),  # asked quantity never computed
  ]:
    assert not TASK.process_check(ex, bad), bad
  # compact form: no spaces, given quantities not restated
  assert TASK.process_check(ex, "c=a*b=3*4=2\nd=c-5=2-5=7\n<answer>7</answer>")
  assert not TASK.process_check(ex, "c=a*b=3*4=2\nd=c-5=2-5=3\n<answer>7</answer>")
  # right answer, broken steps: passes the answer check, fails the strict task
  broken = good.replace("= 3 * 4 = 2", "= 3 * 4 = 3")
  assert TASK.is_correct(ex, broken)
  assert not ArithmeticDAG(require_process=True).is_correct(ex, broken)


def test_perturbed_step_fails_process_check():
  for ex in TASK.generate(9, 6, k=5, template="shop"):
    lines = ex.solution.splitlines()
    i = len(lines) - 3  # an operation step
    head, _, value = lines[i].rpartition("= ")
    lines[i] = f"{head}= {(int(value[:-1]) + 3) % 10}."
    assert not TASK.process_check(ex, "\n".join(lines))


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(text=st.text(alphabet=ArithmeticDAG().alphabet() + "<>/", max_size=80))
def test_garbage_never_raises(text):
  ex = _hand_example()
  assert TASK.reward(ex, text) in (-1.0, 0.0, 1.0)
  assert isinstance(TASK.process_check(ex, text), bool)


def test_compact_template_is_short():
  task = ArithmeticDAG(templates=["compact"], require_process=True)
  for ex in task.generate(0, 20, k=3):
    assert len(task.format_prompt(ex)) <= 64 and len(task.sft_target(ex)) <= 64
    assert " " not in ex.solution and task.is_correct(ex, ex.solution)
  assert "compact" not in {e.metadata["template"] for e in TASK.generate(0, 40)}


def test_direct_frac_replaces_only_the_solution():
  worked = TASK.generate(5, 200, k=2, template="compact")
  assert TASK.generate(5, 200, k=2, template="compact", direct_frac=0.0) == worked
  mixed = TASK.generate(5, 200, k=2, template="compact", direct_frac=0.5)
  bare = [e for e in mixed if e.solution == f"<answer>{e.answer}</answer>"]
  assert 60 <= len(bare) <= 140  # ~Binomial(200, 0.5)
  for e in mixed:  # answers and correctness do not depend on the solution style
    assert TASK.is_correct(e, e.solution) and TASK.is_correct(e, f"<answer>{e.answer}</answer>")
  assert all(e.solution == f"<answer>{e.answer}</answer>"
             for e in TASK.generate(5, 20, k=2, direct_frac=1.0))
  with pytest.raises(ValueError, match="direct_frac"):
    TASK.generate(0, 1, direct_frac=1.5)


def test_answer_noise_corrupts_only_the_final_tag():
  task = ArithmeticDAG(templates=["compact"])
  clean = task.generate(5, 50, k=2)
  assert task.generate(5, 50, k=2, answer_noise=0.0) == clean
  for e in task.generate(5, 50, k=2, answer_noise=1.0):
    body, tag = e.solution.rsplit("<answer>", 1)
    assert body.rstrip().endswith(f"={e.answer}")  # the working is right ...
    assert tag != f"{e.answer}</answer>" and not task.is_correct(e, e.solution)  # ... the tag not
    assert task.is_correct(e, body + f"<answer>{e.answer}</answer>")
  noisy = task.generate(6, 400, k=1, answer_noise=0.3)
  frac = np.mean([not task.is_correct(e, e.solution) for e in noisy])
  assert 0.2 < frac < 0.4
  with pytest.raises(ValueError, match="answer_noise"):
    task.generate(0, 1, answer_noise=-0.1)
