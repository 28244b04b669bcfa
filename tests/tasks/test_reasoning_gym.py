"""reasoning_gym adapter (optional extra)."""

import pytest

pytest.importorskip(
  "reasoning_gym", reason="reasoning-gym not installed (optional extra: pip install reasoning-gym)"
)

from rljax.tasks import ReasoningGymTask, get_task


@pytest.mark.parametrize("name", ["chain_sum", "basic_arithmetic", "countdown", "gsm_symbolic"])
def test_reference_accepted_perturbation_rejected(name):
  task = get_task(f"reasoning_gym:{name}")
  examples = task.generate(0, 5)
  assert examples == task.generate(0, 5)
  for ex in examples:
    assert task.is_correct(ex, task.sft_target(ex))
    assert task.reward(ex, task.sft_target(ex)) == 1.0
    wrong = f"<answer>{ex.answer}1</answer>"
    assert not task.is_correct(ex, wrong) and task.reward(ex, wrong) < 1.0
    assert task.reward(ex, ex.answer) == -1.0  # no tags: format penalty
    assert task.format_prompt(ex).startswith(ex.prompt)


def test_difficulty_config_and_threshold():
  task = ReasoningGymTask("chain_sum", min_terms=2, max_terms=2, threshold=0.5)
  for ex in task.generate(1, 4):
    assert ex.metadata["rg_metadata"]["num_terms"] == 2
    assert task.is_correct(ex, f"<answer>{ex.answer}</answer>")


def test_unknown_dataset():
  with pytest.raises(ValueError, match="unknown reasoning_gym dataset"):
    ReasoningGymTask("not_a_dataset")
