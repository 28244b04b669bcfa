"""SWE-RL reward (rljax.rewards) on hand-written cases."""

import difflib

import hypothesis
import hypothesis.strategies as st
import pytest

from rljax import rewards

FILES = {
  "a.py": "def f(x):\n    return x * 3\n",
  "b.py": "def g(a, b):\n    return a - b\n",
}
ORACLE = {
  "a.py": "def f(x):\n    return x * 4\n",
  "b.py": "def g(a, b):\n    return a + b\n",
}
EDIT_A = "### a.py\n<<<<<<< SEARCH\n    return x * 3\n=======\n    return x * 4\n>>>>>>> REPLACE"
EDIT_B = "### b.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE"


def response(solution, thought="fix the constants"):
  return f"<think>\n{thought}\n</think>\n<solution>\n{solution}\n</solution>"


def test_identical_edit_scores_one():
  assert rewards.swe_rl_reward(response(EDIT_A + "\n" + EDIT_B), FILES, ORACLE) == 1.0


def test_fenced_blocks_are_accepted():
  fenced = f"```python\n{EDIT_A}\n```\n```python\n{EDIT_B}\n```"
  assert rewards.swe_rl_reward(response(fenced), FILES, ORACLE) == 1.0


@pytest.mark.parametrize(
  "text",
  [
    EDIT_A,  # no tags at all
    f"<solution>\n{EDIT_A}\n</solution>",  # no think
    f"<think>x</think>\n{EDIT_A}",  # no solution
    f"<think>x</think><think>y</think><solution>\n{EDIT_A}\n</solution>",  # two thinks
    f"<think>  \n</think><solution>\n{EDIT_A}\n</solution>",  # empty thought
    f"<solution>\n{EDIT_A}\n</solution><think>x</think>",  # wrong order
  ],
)
def test_missing_or_bad_tags_score_minus_one(text):
  assert rewards.swe_rl_reward(text, FILES, ORACLE) == -1.0


def test_search_text_absent_scores_minus_one():
  bad = EDIT_A.replace("x * 3", "x * 7", 1)
  out = rewards.swe_rl_reward_details(response(bad), FILES, ORACLE)
  assert out["reward"] == -1.0
  assert "not found" in out["error"]


def test_search_must_start_a_line():
  # "return x * 3" occurs, but not at a line start: SWE-RL anchors blocks at line boundaries.
  bad = "### a.py\n<<<<<<< SEARCH\nreturn x * 3\n=======\nreturn x * 4\n>>>>>>> REPLACE"
  assert rewards.swe_rl_reward(response(bad), FILES, ORACLE) == -1.0


def test_identical_search_and_replace_scores_minus_one():
  same = "### a.py\n<<<<<<< SEARCH\n    return x * 3\n=======\n    return x * 3\n>>>>>>> REPLACE"
  assert rewards.swe_rl_reward(response(same), FILES, ORACLE) == -1.0


def test_no_blocks_scores_minus_one():
  assert rewards.swe_rl_reward(response("just change it"), FILES, ORACLE) == -1.0


def test_one_of_two_files_right_scores_half():
  out = rewards.swe_rl_reward_details(response(EDIT_A), FILES, ORACLE)
  assert out["similarities"] == {"a.py": 1.0, "b.py": 0.0}
  assert out["reward"] == pytest.approx(0.5)


def test_one_right_one_close_is_between_half_and_one():
  near_b = EDIT_B.replace("a + b", "a * b")
  r = rewards.swe_rl_reward(response(EDIT_A + "\n" + near_b), FILES, ORACLE)
  assert 0.5 < r < 1.0


def test_extra_file_edited_scores_zero_for_that_file():
  oracle_a_only = {"a.py": ORACLE["a.py"]}
  r = rewards.swe_rl_reward(response(EDIT_A + "\n" + EDIT_B), FILES, oracle_a_only)
  assert r == pytest.approx(0.5)


def test_patch_similarity_hand_values():
  # matching blocks "abc": 2 * 3 / (4 + 4)
  assert rewards.patch_similarity("abcd", "abce") == pytest.approx(0.75)
  assert rewards.patch_similarity("", "abc") == 0.0
  assert rewards.patch_similarity("abc", "") == 0.0
  assert rewards.patch_similarity("same", "same") == 1.0


def test_reward_is_mean_of_per_file_ratios():
  wrong_b = EDIT_B.replace("a + b", "b - a")
  out = rewards.swe_rl_reward_details(response(EDIT_A + "\n" + wrong_b), FILES, ORACLE)
  pred_b = rewards.unified_diff(FILES["b.py"], "def g(a, b):\n    return b - a\n")
  oracle_b = rewards.unified_diff(FILES["b.py"], ORACLE["b.py"])
  want_b = difflib.SequenceMatcher(None, pred_b, oracle_b, autojunk=False).ratio()
  assert out["similarities"]["b.py"] == pytest.approx(want_b)
  assert out["reward"] == pytest.approx((1.0 + want_b) / 2)


def test_unified_diff_drops_header_and_is_empty_when_equal():
  assert rewards.unified_diff("a\nb\n", "a\nb\n") == ""
  diff = rewards.unified_diff("a\nb\n", "a\nc\n")
  assert diff.splitlines() == ["@@ -1,2 +1,2 @@", " a", "-b", "+c"]


def test_edits_compose_and_parse_roundtrip():
  edits = rewards.parse_search_replace(
    EDIT_A + "\n" + EDIT_A.replace("3", "4").replace("x * 4\n>", "x * 5\n>")
  )
  assert [e.path for e in edits] == ["a.py", "a.py"]
  new = rewards.apply_search_replace(FILES, edits)
  assert new == {"a.py": "def f(x):\n    return x * 5\n"}
  assert rewards.parse_search_replace(rewards.format_search_replace(edits)) == edits


_PIECES = [
  *"<>/=#\n abst",
  "<think>",
  "</think>",
  "<solution>",
  "</solution>",
  "<<<<<<< SEARCH\n",
  "=======\n",
  ">>>>>>> REPLACE",
  "### a.py\n",
  "    return x * 3",
  "    return x * 4",
  "\n",
]


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(pieces=st.lists(st.sampled_from(_PIECES), max_size=30))
def test_reward_never_raises_and_is_in_range(pieces):
  r = rewards.swe_rl_reward("".join(pieces), FILES, ORACLE)
  assert r == -1.0 or 0.0 <= r <= 1.0
