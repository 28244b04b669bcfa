"""Prompt / completion encoding: left and right padding, and no silent truncation."""

import numpy as np
import pytest

from rljax.tasks import CharTokenizer
from rljax.train import _data


@pytest.fixture(scope="module")
def tok():
  return CharTokenizer("abc0123456789 ")


def test_prompts_left_padded_with_bos(tok):
  tokens, mask = _data.encode_prompts(tok, ["ab", "c"], 4)
  assert mask.tolist() == [[0, 1, 1, 1], [0, 0, 1, 1]]
  assert tokens[0, 1] == tok.bos_id and tokens[1, 2] == tok.bos_id
  assert tok.decode(tokens[0, 2:].tolist()) == "ab"
  assert tokens[1, 0] == tok.pad_id


def test_completions_right_padded_with_eos(tok):
  tokens, mask = _data.encode_completions(tok, ["abc", ""], 5)
  assert mask.tolist() == [[1, 1, 1, 1, 0], [1, 0, 0, 0, 0]]
  assert tokens[0, 3] == tok.eos_id and tokens[1, 0] == tok.eos_id
  assert np.all(tokens[:, -1] == tok.pad_id)


def test_too_long_prompt_raises_naming_the_field(tok):
  with pytest.raises(ValueError, match=r"task\.max_prompt_len: a prompt needs 5 tokens"):
    _data.encode_prompts(tok, ["abc1"], 4)


def test_too_long_completion_raises_unless_truncate(tok):
  with pytest.raises(ValueError, match=r"task\.max_answer_len: a completion needs 5 tokens"):
    _data.encode_completions(tok, ["abc1"], 4)
  tokens, mask = _data.encode_completions(tok, ["abc1"], 4, truncate=True)
  assert tok.decode(tokens[0].tolist()) == "abc1" and mask.sum() == 4
