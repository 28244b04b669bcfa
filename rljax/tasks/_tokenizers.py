"""Tokenizers behind one thin interface: a character tokenizer, in-process BPE, HF folders.

Every tokenizer here exposes ``encode(text, add_bos=False, add_eos=False) -> list[int]``,
``decode(ids, skip_special=True) -> str``, ``vocab_size``, ``pad_id``, ``bos_id``, ``eos_id``,
so trainers and the rollout engine can take either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from rljax.tasks._base import ANSWER_CLOSE, ANSWER_OPEN

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
_CHAR_FILE = "char_tokenizer.json"


@runtime_checkable
class Tokenizer(Protocol):
  """The interface trainers rely on."""

  @property
  def vocab_size(self) -> int: ...

  @property
  def pad_id(self) -> int: ...

  @property
  def bos_id(self) -> int | None: ...

  @property
  def eos_id(self) -> int: ...

  def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]: ...

  def decode(self, ids: Iterable[int], skip_special: bool = True) -> str: ...


class CharTokenizer:
  """Character-level tokenizer with a tiny vocabulary.

  Ids: 0 = ``<pad>``, 1 = ``<bos>``, 2 = ``<eos>``, 3 = ``<unk>``, then the multi-character tags
  (``<answer>``, ``</answer>`` and any extras, each a single token, matched longest first), then
  one id per character of the alphabet. Characters outside the alphabet encode to ``<unk>``.
  ``decode(skip_special=True)`` drops pad/bos/eos/unk but keeps the tags: they are content the
  verifiers read.

  Args:
    alphabet: the characters (duplicates ignored, order kept).
    tags: multi-character strings kept as single tokens.
  """

  def __init__(self, alphabet: str, tags: Sequence[str] = (ANSWER_OPEN, ANSWER_CLOSE)):
    chars = list(dict.fromkeys(alphabet))
    tags = list(dict.fromkeys(tags))
    for t in tags:
      if len(t) < 2:
        raise ValueError(f"tags must be multi-character strings, got {t!r}")
    self._control = [PAD, BOS, EOS, UNK]
    self.tags = tuple(tags)
    self.alphabet = "".join(chars)
    self._itos = [*self._control, *tags, *chars]
    self._stoi = {s: i for i, s in enumerate(self._itos) if i >= len(self._control)}
    self._tags_longest_first = sorted(tags, key=len, reverse=True)

  @classmethod
  def from_task(cls, task, extra_text: str = "") -> CharTokenizer:
    """The tokenizer for a synthetic task: its alphabet and tags (plus any extra characters)."""
    alphabet = task.alphabet()
    if not alphabet:
      raise ValueError(f"task {task.name!r} has no bounded alphabet; use train_bpe instead")
    return cls(alphabet + extra_text, tags=task.special_tokens())

  @classmethod
  def from_texts(cls, texts: Iterable[str], tags: Sequence[str] = (ANSWER_OPEN, ANSWER_CLOSE)):
    """A tokenizer whose alphabet is every character seen in ``texts`` (tags excluded)."""
    seen: set[str] = set()
    for text in texts:
      for t in tags:
        text = text.replace(t, "")
      seen.update(text)
    return cls("".join(sorted(seen)), tags=tags)

  @property
  def vocab_size(self) -> int:
    return len(self._itos)

  @property
  def pad_id(self) -> int:
    return 0

  @property
  def bos_id(self) -> int:
    return 1

  @property
  def eos_id(self) -> int:
    return 2

  @property
  def unk_id(self) -> int:
    return 3

  def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
    """Token ids of ``text`` (tags first, longest match, then single characters)."""
    ids = [self.bos_id] if add_bos else []
    i = 0
    while i < len(text):
      for tag in self._tags_longest_first:
        if text.startswith(tag, i):
          ids.append(self._stoi[tag])
          i += len(tag)
          break
      else:
        ids.append(self._stoi.get(text[i], self.unk_id))
        i += 1
    if add_eos:
      ids.append(self.eos_id)
    return ids

  def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
    """Text of ``ids``; control tokens dropped when ``skip_special``, else shown as ``<eos>``."""
    out = []
    for i in ids:
      i = int(i)
      if not 0 <= i < len(self._itos):
        raise ValueError(f"token id {i} out of range [0, {len(self._itos)})")
      if i < len(self._control) and skip_special:
        continue
      out.append(self._itos[i])
    return "".join(out)

  def save(self, directory: str | os.PathLike) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, _CHAR_FILE), "w", encoding="utf-8") as f:
      json.dump({"type": "char", "alphabet": self.alphabet, "tags": list(self.tags)}, f)

  @classmethod
  def load(cls, directory: str | os.PathLike) -> CharTokenizer:
    with open(os.path.join(directory, _CHAR_FILE), encoding="utf-8") as f:
      cfg = json.load(f)
    return cls(cfg["alphabet"], tags=cfg["tags"])

  def __eq__(self, other) -> bool:
    return isinstance(other, CharTokenizer) and self._itos == other._itos

  def __hash__(self) -> int:
    return hash(tuple(self._itos))

  def __repr__(self) -> str:
    return f"CharTokenizer(vocab_size={self.vocab_size}, tags={self.tags})"


class HFTokenizer:
  """The common interface over a ``transformers`` tokenizer.

  ``pad_id`` falls back to ``eos_id`` when the tokenizer has no pad token. ``bos_id`` is None
  for tokenizers without one (``encode(add_bos=True)`` then raises).
  """

  def __init__(self, tokenizer):
    self.hf = tokenizer
    if tokenizer.eos_token_id is None:
      raise ValueError("the tokenizer has no eos token; set tokenizer.eos_token first")

  @property
  def vocab_size(self) -> int:
    return len(self.hf)

  @property
  def pad_id(self) -> int:
    pid = self.hf.pad_token_id
    return self.eos_id if pid is None else int(pid)

  @property
  def bos_id(self) -> int | None:
    bid = self.hf.bos_token_id
    return None if bid is None else int(bid)

  @property
  def eos_id(self) -> int:
    return int(self.hf.eos_token_id)

  def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
    ids = list(self.hf.encode(text, add_special_tokens=False))
    if add_bos:
      if self.bos_id is None:
        raise ValueError("add_bos=True but the tokenizer has no bos token")
      ids.insert(0, self.bos_id)
    if add_eos:
      ids.append(self.eos_id)
    return ids

  def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
    return self.hf.decode([int(i) for i in ids], skip_special_tokens=skip_special)

  def save(self, directory: str | os.PathLike) -> None:
    self.hf.save_pretrained(str(directory))

  def __repr__(self) -> str:
    return f"HFTokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size})"


def train_bpe(
  texts: Iterable[str],
  vocab_size: int,
  out_dir: str | os.PathLike,
  *,
  tags: Sequence[str] = (ANSWER_OPEN, ANSWER_CLOSE),
  min_frequency: int = 2,
) -> HFTokenizer:
  """Train a byte-level BPE in process and save it as a Hugging Face tokenizer folder.

  Special tokens ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>`` take ids 0-3; ``tags`` are added as
  single (non-special, so decoded) tokens. The folder loads with
  ``transformers.AutoTokenizer.from_pretrained(out_dir)`` or :func:`load_hf_tokenizer`.

  Args:
    texts: training corpus.
    vocab_size: target vocabulary size (>= 256 + special tokens for full byte coverage).
    out_dir: folder to write.
    tags: strings kept whole.
    min_frequency: minimum pair count for a merge.

  Returns:
    The trained tokenizer.
  """
  import tokenizers
  import transformers
  from tokenizers import decoders, models, pre_tokenizers, trainers

  specials = [PAD, BOS, EOS, UNK]
  if vocab_size < 256 + len(specials):
    raise ValueError(f"vocab_size must be >= {256 + len(specials)} for byte-level BPE")
  tok = tokenizers.Tokenizer(models.BPE(unk_token=None))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(
    vocab_size=vocab_size,
    min_frequency=min_frequency,
    special_tokens=specials,
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    show_progress=False,
  )
  tok.train_from_iterator(list(texts), trainer=trainer)
  if tags:
    tok.add_tokens([tokenizers.AddedToken(t, special=False, normalized=False) for t in tags])
  fast = transformers.PreTrainedTokenizerFast(
    tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK
  )
  os.makedirs(out_dir, exist_ok=True)
  fast.save_pretrained(str(out_dir))
  return HFTokenizer(fast)


def load_hf_tokenizer(path: str | os.PathLike) -> HFTokenizer:
  """A local Hugging Face tokenizer folder via ``AutoTokenizer`` (local files only)."""
  import transformers

  if not os.path.isdir(path):
    raise FileNotFoundError(f"no tokenizer folder at {path}")
  return HFTokenizer(transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True))


def load_tokenizer(path: str | os.PathLike) -> CharTokenizer | HFTokenizer:
  """Load whichever tokenizer a folder holds (``CharTokenizer.save`` or an HF folder)."""
  if os.path.exists(os.path.join(path, _CHAR_FILE)):
    return CharTokenizer.load(path)
  return load_hf_tokenizer(path)


__all__ = [
  "CharTokenizer",
  "HFTokenizer",
  "Tokenizer",
  "load_hf_tokenizer",
  "load_tokenizer",
  "train_bpe",
]
