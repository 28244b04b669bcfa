"""Batching token sequences: left-padded prompts, prompt+completion packing with masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_seqs(seqs, name: str) -> list[list[int]]:
  if isinstance(seqs, np.ndarray) and seqs.ndim != 2:
    raise ValueError(f"{name} must be a list of token-id lists, got an array of rank {seqs.ndim}")
  out = []
  for i, s in enumerate(seqs):
    if isinstance(s, (str, bytes)):
      raise TypeError(f"{name}[{i}] is text; encode it first")
    out.append([int(t) for t in s])
  return out


def left_pad(
  seqs: Sequence[Sequence[int]], pad_id: int, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Left-pad prompts so they all end at the last column (ready for batched decoding).

  tokens[b, P - len_b + j] = seqs[b][j], mask marks those positions; the rest is ``pad_id``.

  Args:
    seqs: B token-id sequences.
    pad_id: the padding id.
    length: P, the padded length (default: the longest sequence).

  Returns:
    ``(tokens_BP, mask_BP)``: int32 ``[B, P]`` tokens and bool ``[B, P]`` mask.

  Raises:
    ValueError: when a sequence is longer than ``length`` (naming it; nothing is truncated).
  """
  seqs = _check_seqs(seqs, "seqs")
  longest = max((len(s) for s in seqs), default=0)
  P = longest if length is None else int(length)
  for i, s in enumerate(seqs):
    if len(s) > P:
      raise ValueError(f"seqs[{i}] has {len(s)} tokens, longer than length={P}")
  tokens_BP = np.full((len(seqs), P), pad_id, dtype=np.int32)
  mask_BP = np.zeros((len(seqs), P), dtype=bool)
  for i, s in enumerate(seqs):
    if s:
      tokens_BP[i, P - len(s) :] = s
      mask_BP[i, P - len(s) :] = True
  return tokens_BP, mask_BP


def pack_prompt_completion(
  prompts: Sequence[Sequence[int]],
  completions: Sequence[Sequence[int]],
  pad_id: int,
  max_len: int | None = None,
) -> dict[str, np.ndarray]:
  """Concatenate prompt and completion per row, right-padded, with masks for SFT and RL.

  Row b: tokens = prompt_b ++ completion_b ++ pad. ``loss_mask[b, t]`` is True where
  ``tokens[b, t]`` is a completion token, so the next-token loss of position t - 1 uses
  ``loss_mask[:, 1:]`` with targets ``tokens[:, 1:]``.

  Args:
    prompts: B prompt token-id sequences.
    completions: B completion token-id sequences (an EOS, if wanted, already appended).
    pad_id: the padding id.
    max_len: T, the padded length (default: the longest row).

  Returns:
    ``{"tokens": int32 [B, T], "attention_mask": bool [B, T], "loss_mask": bool [B, T]}``.

  Raises:
    ValueError: on mismatched batch sizes or a row longer than ``max_len`` (naming it).
  """
  prompts = _check_seqs(prompts, "prompts")
  completions = _check_seqs(completions, "completions")
  if len(prompts) != len(completions):
    raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
  lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
  T = max(lengths, default=0) if max_len is None else int(max_len)
  for i, n in enumerate(lengths):
    if n > T:
      raise ValueError(
        f"row {i}: prompt ({len(prompts[i])}) + completion ({len(completions[i])}) = {n} tokens,"
        f" longer than max_len={T}"
      )
  B = len(prompts)
  tokens_BT = np.full((B, T), pad_id, dtype=np.int32)
  attention_BT = np.zeros((B, T), dtype=bool)
  loss_BT = np.zeros((B, T), dtype=bool)
  for i, (p, c) in enumerate(zip(prompts, completions)):
    row = p + c
    tokens_BT[i, : len(row)] = row
    attention_BT[i, : len(row)] = True
    loss_BT[i, len(p) : len(row)] = True
  return {"tokens": tokens_BT, "attention_mask": attention_BT, "loss_mask": loss_BT}


__all__ = ["left_pad", "pack_prompt_completion"]
