"""Tokenizers: char-level and BPE round trips, save/load, AutoTokenizer compatibility."""

import hypothesis
import hypothesis.strategies as st
import pytest
import transformers

from rljax.tasks import (
  ANSWER_CLOSE,
  ANSWER_OPEN,
  ArithmeticDAG,
  CharTokenizer,
  CodeEdit,
  Countdown,
  GeneralPoints,
  HFTokenizer,
  Tokenizer,
  load_hf_tokenizer,
  load_tokenizer,
  train_bpe,
)


def test_char_layout_and_hand_ids():
  tok = CharTokenizer("ab= ")
  assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
  assert tok.vocab_size == 4 + 2 + 4
  # <answer> = 4, </answer> = 5, then a b = space
  assert tok.encode("a=b", add_bos=True, add_eos=True) == [1, 6, 8, 7, 2]
  assert tok.encode("<answer>ab</answer>") == [4, 6, 7, 5]
  assert tok.encode("a?") == [6, 3]
  assert tok.decode([1, 4, 6, 5, 2, 0, 0]) == "<answer>a</answer>"
  assert tok.decode([1, 6, 2], skip_special=False) == "<bos>a<eos>"
  with pytest.raises(ValueError, match="out of range"):
    tok.decode([99])
  assert isinstance(tok, Tokenizer)


@pytest.mark.parametrize("task", [ArithmeticDAG(), GeneralPoints(), Countdown(), CodeEdit()])
def test_task_tokenizer_round_trips_prompts_and_targets(task, tmp_path):
  tok = CharTokenizer.from_task(task)
  for ex in task.generate(0, 4):
    for text in (task.format_prompt(ex), task.sft_target(ex)):
      ids = tok.encode(text, add_bos=True, add_eos=True)
      assert tok.unk_id not in ids
      assert tok.decode(ids) == text
  tok.save(tmp_path)
  assert CharTokenizer.load(tmp_path) == tok
  assert load_tokenizer(tmp_path) == tok
  assert tok.vocab_size < 128


def test_tags_are_single_tokens():
  tok = CharTokenizer.from_task(ArithmeticDAG())
  ids = tok.encode(f"{ANSWER_OPEN}7{ANSWER_CLOSE}")
  assert len(ids) == 3
  tok = CharTokenizer.from_task(CodeEdit())
  assert len(tok.encode("<think>x</think>")) == 3


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(text=st.text(alphabet="ab= <>/answer", max_size=40))
def test_char_round_trip_property(text):
  tok = CharTokenizer.from_texts(["ab= <>/answer"])
  assert tok.decode(tok.encode(text)) == text


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
  texts = [ex.prompt + "\n" + ex.solution for ex in ArithmeticDAG().generate(0, 60, k=(1, 4))]
  out = tmp_path_factory.mktemp("bpe")
  tok = train_bpe(texts, 320, out)
  return out, tok, texts


def test_bpe_round_trip_and_reload_with_autotokenizer(bpe_dir):
  out, tok, texts = bpe_dir
  assert isinstance(tok, HFTokenizer) and isinstance(tok, Tokenizer)
  assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
  auto = transformers.AutoTokenizer.from_pretrained(str(out), local_files_only=True)
  reloaded = load_hf_tokenizer(out)
  for text in [*texts[:5], "unseen bytes: héllo ✓\n\t"]:
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert tok.decode(ids) == text
    assert reloaded.encode(text) == tok.encode(text)
    assert auto.encode(text, add_special_tokens=False) == tok.encode(text)
  # BPE compresses the corpus it was trained on
  assert len(tok.encode(texts[0])) < 0.75 * len(texts[0])
  # tags survive as single tokens and are kept by decode(skip_special=True)
  assert len(tok.encode(ANSWER_OPEN)) == 1
  assert tok.decode(tok.encode(f"{ANSWER_OPEN}3{ANSWER_CLOSE}")) == f"{ANSWER_OPEN}3{ANSWER_CLOSE}"
  assert isinstance(load_tokenizer(out), HFTokenizer)


def test_bpe_vocab_too_small():
  with pytest.raises(ValueError, match="vocab_size"):
    train_bpe(["abc"], 100, "/tmp/never-written")


def test_load_hf_tokenizer_missing_folder(tmp_path):
  with pytest.raises(FileNotFoundError):
    load_hf_tokenizer(tmp_path / "nope")
