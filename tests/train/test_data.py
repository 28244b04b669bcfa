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


def test_padded_length_rounds_up_and_caps():
  assert _data.padded_length(17, 16, 96) == 32
  assert _data.padded_length(32, 16, 96) == 32
  assert _data.padded_length(90, 16, 96) == 96  # capped
  assert _data.padded_length(17, 0, 96) == 96  # 0: the fixed maximum


class _Task:
  """A minimal task: the prompt and the worked solution are the example's own strings."""

  def format_prompt(self, e):
    return e[0]

  def sft_target(self, e):
    return e[1]


def test_sft_batch_pad_multiple_keeps_every_token_and_only_trims_padding(tok):
  ex = [("ab", "a1"), ("abc01", "0123456")]
  full = _data.sft_batch(_Task(), tok, ex, 16, 16)
  cut = _data.sft_batch(_Task(), tok, ex, 16, 16, pad_multiple=4)
  # longest prompt: BOS + 5 = 6 -> 8; longest answer: 7 + EOS = 8 -> 8.
  assert cut["prompt"].shape == (2, 8) and cut["tokens"].shape == (2, 8)
  for k in ("prompt", "prompt_mask"):  # left padding: the same right end
    np.testing.assert_array_equal(cut[k], full[k][:, -8:])
  for k in ("tokens", "mask"):  # right padding: the same left end
    np.testing.assert_array_equal(cut[k], full[k][:, :8])
  assert full["prompt_mask"][:, :-8].sum() == 0 and full["mask"][:, 8:].sum() == 0


def test_sft_batch_pad_multiple_still_raises_past_the_maximum(tok):
  with pytest.raises(ValueError, match=r"task\.max_answer_len: a completion needs 8 tokens"):
    _data.sft_batch(_Task(), tok, [("a", "0123456")], 16, 6, pad_multiple=4)


def test_trim_padding_cuts_shared_padding_columns_only():
  pm = np.array([[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]])
  m = np.array([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
  b = {"prompt": np.arange(10).reshape(2, 5), "prompt_mask": pm,
       "tokens": np.arange(12).reshape(2, 6), "mask": m,
       "old_logp": -np.ones((2, 6)), "advantages": np.array([1.0, -1.0])}
  out = _data.trim_padding(b, 2)  # longest prompt 3 -> 4 columns, longest completion 2 -> 2
  np.testing.assert_array_equal(out["prompt"], b["prompt"][:, 1:])
  np.testing.assert_array_equal(out["prompt_mask"], pm[:, 1:])
  for k in ("tokens", "mask", "old_logp"):
    np.testing.assert_array_equal(out[k], b[k][:, :2])
  np.testing.assert_array_equal(out["advantages"], b["advantages"])
  assert _data.trim_padding(b, 0) is b
  assert _data.trim_padding(b, 8)["tokens"].shape == (2, 6)  # capped at the full width
