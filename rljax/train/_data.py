"""Deterministic problem streams and fixed-shape token batches for the trainers.

The data-iterator position of a run is simply the step: the problems of step ``s`` are
``task.generate(np.random.default_rng([seed, s, round]), n)``, so a resumed run sees exactly
the problems an uninterrupted one would. Shapes are static (prompts left-padded to
``max_prompt_len``, completions right-padded to a fixed length; longer ones
are errors) so nothing recompiles, except where a trainer's ``pad_multiple`` is set (SFT, GRPO,
PPO, DPO): its batches take a few bucketed widths instead (one compile per width).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np


class Tokenizer(Protocol):
  pad_id: int
  eos_id: int
  vocab_size: int

  def encode(self, text: str) -> list[int]: ...

  def decode(self, ids) -> str: ...


@dataclasses.dataclass(frozen=True)
class ProblemStream:
  """Problems of a task indexed by (step, round): deterministic and resumable.

  Args:
    task: an ``rljax.tasks`` task.
    seed: stream seed (train and held-out streams use different seeds).
    difficulty: keyword arguments of ``task.generate``.
  """

  task: Any
  seed: int
  difficulty: dict[str, Any] = dataclasses.field(default_factory=dict)

  def batch(self, step: int, n: int, round_: int = 0) -> list[Any]:
    rng = np.random.default_rng([self.seed, step, round_])
    return self.task.generate(rng, n, **self.difficulty)


def _bos(tok) -> list[int]:
  bos = getattr(tok, "bos_id", None)
  return [] if bos is None else [int(bos)]


def padded_length(needed: int, multiple: int, cap: int) -> int:
  """``needed`` rounded up to a multiple of ``multiple`` (``multiple = 0``: ``cap``), at most
  ``cap``. A row longer than ``cap`` is left to the encoders, which raise for it."""
  if multiple <= 0:
    return cap
  return min(cap, -(-max(needed, 1) // multiple) * multiple)


def encode_prompts(tok: Tokenizer, texts: list[str], length: int, *,
                   field: str = "task.max_prompt_len", pad_multiple: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Left-padded prompt ids ``[B, length]`` and mask (BOS first); with ``pad_multiple = m > 0``
  ``[B, L]``, L the next multiple of m of the longest prompt (at most ``length``).

  Raises:
    ValueError: naming ``field`` when a prompt needs more than ``length`` tokens; a prompt is
      never cut silently (the model would see a different problem from the one scored).
  """
  rows = [_bos(tok) + list(tok.encode(t)) for t in texts]
  for i, (t, ids) in enumerate(zip(texts, rows)):
    if len(ids) > length:
      raise ValueError(f"{field}: a prompt needs {len(ids)} tokens but {field} = {length}; "
                       f"raise {field} or use shorter prompts (prompt {i}: {t[:60]!r}...)")
  if pad_multiple:
    length = padded_length(max(map(len, rows), default=0), pad_multiple, length)
  tokens = np.full((len(texts), length), tok.pad_id, np.int32)
  mask = np.zeros((len(texts), length), np.int32)
  for i, ids in enumerate(rows):
    tokens[i, length - len(ids):] = ids
    mask[i, length - len(ids):] = 1
  return tokens, mask


def encode_completions(tok: Tokenizer, texts: list[str], length: int, *,
                       field: str = "task.max_answer_len", truncate: bool = False,
                       pad_multiple: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Right-padded completion ids ``[B, length]`` ending in EOS; with ``pad_multiple = m > 0``
  ``[B, L]``, L the next multiple of m of the longest completion (at most ``length``).

  Args:
    truncate: cut completions longer than ``length`` (with their EOS) instead of raising; only
      for text that was itself sampled under that length limit (e.g. DPO's rejected samples).

  Raises:
    ValueError: naming ``field`` when a completion + EOS needs more than ``length`` tokens and
      ``truncate`` is False (SFT targets are never cut silently).
  """
  rows = [[*list(tok.encode(t)), tok.eos_id] for t in texts]
  for i, (t, ids) in enumerate(zip(texts, rows)):
    if len(ids) > length:
      if not truncate:
        raise ValueError(f"{field}: a completion needs {len(ids)} tokens (with EOS) but {field} "
                         f"= {length}; raise {field} (completion {i}: {t[:60]!r}...)")
      rows[i] = ids[:length]
  if pad_multiple:
    length = padded_length(max(map(len, rows), default=0), pad_multiple, length)
  tokens = np.full((len(texts), length), tok.pad_id, np.int32)
  mask = np.zeros((len(texts), length), np.int32)
  for i, ids in enumerate(rows):
    tokens[i, :len(ids)] = ids
    mask[i, :len(ids)] = 1
  return tokens, mask


def decode_completions(tok: Tokenizer, tokens: np.ndarray, mask: np.ndarray) -> list[str]:
  """Text of each completion row: valid tokens, EOS and padding dropped."""
  out = []
  for row, m in zip(np.asarray(tokens), np.asarray(mask)):
    ids = [int(t) for t, v in zip(row, m) if v and int(t) != tok.eos_id and int(t) != tok.pad_id]
    out.append(tok.decode(ids))
  return out


def trim_padding(batch: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
  """``batch`` without the padding columns every row shares, kept to a multiple of ``multiple``:
  prompt-side arrays (``prompt``, ``prompt_mask``) lose leading columns, completion-side ones
  (``tokens``, ``mask``, ``*_logp``; DPO's ``chosen*`` / ``rejected*``) trailing columns, as far
  as every completion mask (``*mask`` but ``prompt_mask``) allows; 1-D entries are kept.
  ``multiple = 0`` returns ``batch`` unchanged."""
  if multiple <= 0:
    return batch
  masks = [v for k, v in batch.items() if k.endswith("mask") and k != "prompt_mask"]
  lp, n = batch["prompt_mask"].shape[1], masks[0].shape[1]
  p = padded_length(int(batch["prompt_mask"].sum(-1).max()), multiple, lp)
  last = max(int(np.flatnonzero(m.any(0)).max(initial=-1)) for m in masks)
  t = padded_length(last + 1, multiple, n)
  out = {}
  for k, v in batch.items():
    if k.startswith("prompt"):
      out[k] = v[:, lp - p:]
    elif np.ndim(v) == 2:
      out[k] = v[:, :t]
    else:
      out[k] = v
  return out


def sft_batch(task, tok: Tokenizer, examples: list[Any], prompt_len: int, answer_len: int,
              *, pad_multiple: int = 0) -> dict[str, np.ndarray]:
  """The SFT batch of ``examples``: prompts and their worked solutions (+ EOS).

  Prompts are left-padded to ``prompt_len`` and answers right-padded to ``answer_len``; with
  ``pad_multiple = m > 0`` only to the next multiple of m of the batch's longest prompt /
  answer (at most those lengths), which changes no valid token's loss, only the padding.
  """
  prompt, prompt_mask = encode_prompts(tok, [task.format_prompt(e) for e in examples],
                                       prompt_len, pad_multiple=pad_multiple)
  tokens, mask = encode_completions(tok, [task.sft_target(e) for e in examples], answer_len,
                                    pad_multiple=pad_multiple)
  return {"prompt": prompt, "prompt_mask": prompt_mask, "tokens": tokens, "mask": mask}
