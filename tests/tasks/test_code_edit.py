"""code_edit: determinism, exact edit count, oracle edits fix exactly the reported bugs."""

import pytest

from rljax import rewards
from rljax.tasks import CodeEdit

TASK = CodeEdit()


def _run_checks(files, checks):
  """Execute each file and return, per check, whether func(*args) == expected."""
  results = []
  for check in checks:
    scope = {}
    exec(compile(files[check["path"]], check["path"], "exec"), scope)
    results.append(scope[check["func"]](*check["args"]) == check["expected"])
  return results


def test_deterministic():
  assert TASK.generate(0, 5) == TASK.generate(0, 5)
  assert TASK.generate(0, 5) != TASK.generate(1, 5)


@pytest.mark.parametrize("n_files, n_edits", [(1, 1), (2, 2), (3, 4)])
def test_oracle_edits_are_correct(n_files, n_edits):
  for ex in TASK.generate(n_edits, 6, n_files=n_files, n_edits=n_edits):
    files, oracle = ex.metadata["files"], ex.metadata["oracle_files"]
    assert len(files) == n_files
    assert len(rewards.parse_search_replace(ex.answer)) == n_edits
    assert len(ex.metadata["checks"]) == n_edits
    # the buggy code fails every reported check, the oracle passes all of them
    assert not any(_run_checks(files, ex.metadata["checks"]))
    assert all(_run_checks({**files, **oracle}, ex.metadata["checks"]))
    # the reference response reproduces the oracle exactly
    assert TASK.reward(ex, ex.solution) == 1.0
    assert TASK.is_correct(ex, ex.solution)


def test_reward_is_the_swe_rl_reward_and_rejects_perturbations():
  ex = TASK.generate(3, 1, n_files=2, n_edits=2)[0]
  files, oracle = ex.metadata["files"], ex.metadata["oracle_files"]
  edits = rewards.parse_search_replace(ex.answer)
  one_block = rewards.format_search_replace(edits[:1])
  partial = f"<think>\nfix one\n</think>\n<solution>\n{one_block}\n</solution>"
  r = TASK.reward(ex, partial)
  assert r == rewards.swe_rl_reward(partial, files, oracle)
  assert 0.0 < r < 1.0
  assert not TASK.is_correct(ex, partial)
  assert TASK.reward(ex, ex.solution.replace("<think>", "")) == -1.0
  assert not TASK.is_correct(ex, "garbage")


def test_validation():
  with pytest.raises(ValueError, match="n_edits"):
    TASK.generate(0, 1, n_files=1, n_edits=5)
