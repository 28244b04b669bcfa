"""The task protocol: Example validation, seeding, answer tags, batched rewards."""

import numpy as np
import pytest

from rljax.tasks import Countdown, Example, as_rng, extract_answer, wrap_answer


def test_example_fields_are_checked_and_frozen():
  ex = Example("p", "1", "<answer>1</answer>", {"k": 1})
  assert ex == Example(prompt="p", answer="1", solution="<answer>1</answer>", metadata={"k": 1})
  with pytest.raises(TypeError, match=r"Example.answer must be a str"):
    Example(prompt="p", answer=1, solution="")
  with pytest.raises(AttributeError):
    ex.answer = "2"
  assert len({ex, Example("p", "1", "<answer>1</answer>", {"k": 1})}) == 1  # hashable


def test_as_rng():
  assert as_rng(3).integers(1000) == np.random.default_rng(3).integers(1000)
  g = np.random.default_rng(0)
  assert as_rng(g) is g
  with pytest.raises(TypeError, match="seed_or_rng"):
    as_rng("seed")


def test_answer_tags():
  assert wrap_answer("7") == "<answer>7</answer>"
  assert extract_answer("a <answer> 1 </answer> b <answer>2</answer>") == "2"
  assert extract_answer("<answer>1") is None


def test_batched_rewards():
  task = Countdown()
  exs = task.generate(0, 3)
  r = task.rewards(exs, [exs[0].solution, "nothing", exs[2].solution])
  np.testing.assert_array_equal(r, np.array([1.0, -1.0, 1.0], np.float32))
  assert r.dtype == np.float32
  with pytest.raises(ValueError, match="3 examples but 1 completions"):
    task.rewards(exs, ["x"])
  with pytest.raises(ValueError, match="n must be"):
    task.generate(0, -1)


def test_register_task_makes_get_task_build_it():
  from rljax.tasks import CodeEdit, _registry, get_task, register_task, task_names

  class Strict(CodeEdit):
    name = "strict_code_edit"

  try:
    register_task("strict_code_edit", Strict)
    register_task("strict_code_edit", Strict)  # the same factory again: a no-op
    assert isinstance(get_task("strict_code_edit"), Strict)
    assert "strict_code_edit" in task_names()
    with pytest.raises(ValueError, match="already registered"):
      register_task("strict_code_edit", CodeEdit)
    register_task("strict_code_edit", CodeEdit, overwrite=True)
    assert type(get_task("strict_code_edit")) is CodeEdit
    with pytest.raises(ValueError, match="already registered"):
      register_task("code_edit", Strict)  # built-ins are protected too
    with pytest.raises(ValueError, match="without ':'"):
      register_task("jsonl:x", Strict)
    with pytest.raises(TypeError, match="callable"):
      register_task("x", 3)
  finally:
    _registry._SYNTHETIC.pop("strict_code_edit", None)
