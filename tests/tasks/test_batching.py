"""Batching helpers: left padding and prompt+completion packing."""

import numpy as np
import pytest

from rljax.tasks import left_pad, pack_prompt_completion


def test_left_pad_hand_values():
  tokens, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
  np.testing.assert_array_equal(tokens, [[5, 6, 7], [0, 0, 8]])
  np.testing.assert_array_equal(mask, [[True, True, True], [False, False, True]])
  assert tokens.dtype == np.int32 and mask.dtype == bool
  tokens, mask = left_pad([[5], []], pad_id=9, length=3)
  np.testing.assert_array_equal(tokens, [[9, 9, 5], [9, 9, 9]])
  np.testing.assert_array_equal(mask.sum(1), [1, 0])


def test_left_pad_refuses_to_truncate():
  with pytest.raises(ValueError, match=r"seqs\[1\] has 3 tokens, longer than length=2"):
    left_pad([[1], [1, 2, 3]], pad_id=0, length=2)


def test_pack_hand_values():
  batch = pack_prompt_completion([[1, 5, 6], [1, 7]], [[8, 2], [9, 9, 9, 2]], pad_id=0)
  np.testing.assert_array_equal(batch["tokens"], [[1, 5, 6, 8, 2, 0], [1, 7, 9, 9, 9, 2]])
  np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1, 1, 1, 0], [1] * 6])
  np.testing.assert_array_equal(batch["loss_mask"], [[0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1]])
  assert batch["tokens"].dtype == np.int32 and batch["loss_mask"].dtype == bool
  # loss positions are exactly the completions
  for b, comp in enumerate([[8, 2], [9, 9, 9, 2]]):
    assert batch["tokens"][b][batch["loss_mask"][b]].tolist() == comp


def test_pack_max_len_and_errors():
  batch = pack_prompt_completion([[1]], [[2]], pad_id=0, max_len=4)
  assert batch["tokens"].shape == (1, 4)
  with pytest.raises(ValueError, match="row 0"):
    pack_prompt_completion([[1, 2]], [[3, 4]], pad_id=0, max_len=3)
  with pytest.raises(ValueError, match="2 prompts but 1 completions"):
    pack_prompt_completion([[1], [2]], [[3]], pad_id=0)
  with pytest.raises(TypeError, match="encode it first"):
    left_pad(["abc"], pad_id=0)
