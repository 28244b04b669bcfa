"""Dataset I/O: export round trips, the user's own data, malformed rows, checkers, get_task."""

import importlib.util
import json

import pytest

from rljax.tasks import (
  ArithmeticDAG,
  CodeEdit,
  Countdown,
  DatasetTask,
  Example,
  GeneralPoints,
  MalformedDataError,
  check_exact,
  check_math_verify,
  check_numeric,
  from_hf_dataset,
  get_task,
  load_examples,
  task_names,
  task_to_hf_dataset,
  to_hf_dataset,
  write_jsonl,
)


@pytest.mark.parametrize("task", [ArithmeticDAG(), GeneralPoints(), Countdown(), CodeEdit()])
def test_export_round_trip_is_identical(task, tmp_path):
  examples = task.generate(0, 5)
  ds = task_to_hf_dataset(task, 0, 5)
  assert ds.column_names == ["prompt", "answer", "solution", "metadata"]
  assert from_hf_dataset(ds) == examples
  ds.save_to_disk(str(tmp_path / "ds"))
  assert load_examples(tmp_path / "ds") == examples
  write_jsonl(examples, tmp_path / "x.jsonl")
  assert load_examples(tmp_path / "x.jsonl") == examples
  # the reloaded examples still verify
  for ex in load_examples(tmp_path / "ds"):
    assert task.is_correct(ex, task.sft_target(ex))


def test_parquet_and_custom_columns(tmp_path):
  ds = to_hf_dataset([Example(prompt="1+1?", answer="2", solution="<answer>2</answer>")])
  ds.to_parquet(str(tmp_path / "d.parquet"))
  assert load_examples(tmp_path / "d.parquet")[0].answer == "2"
  (tmp_path / "q.jsonl").write_text(json.dumps({"question": "2+2?", "gold": 4}) + "\n")
  task = get_task(
    f"jsonl:{tmp_path / 'q.jsonl'}",
    checker="numeric",
    column_names={"prompt_key": "question", "answer_key": "gold"},
  )
  (ex,) = task.generate(0, 1)
  assert ex.prompt == "2+2?" and ex.answer == "4" and ex.solution == "<answer>4</answer>"
  assert task.format_prompt(ex) == "2+2?\n"


def test_malformed_rows_are_reported_with_file_and_line(tmp_path):
  path = tmp_path / "bad.jsonl"
  lines = [
    json.dumps({"prompt": "ok", "answer": "1"}),
    "{not json",
    "",
    json.dumps({"prompt": "no answer"}),
    json.dumps({"prompt": 3, "answer": "1"}),
    json.dumps({"prompt": "p", "answer": "1", "metadata": "{oops"}),
  ]
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(MalformedDataError) as err:
    load_examples(path)
  msg = str(err.value)
  assert "4 malformed row(s)" in msg
  for lineno in (2, 4, 5, 6):
    assert f"{path}:{lineno}:" in msg
  assert f"{path}:1:" not in msg and f"{path}:3:" not in msg


def test_unsupported_and_missing_paths(tmp_path):
  with pytest.raises(FileNotFoundError):
    load_examples(tmp_path / "nope.jsonl")
  (tmp_path / "a.txt").write_text("x")
  with pytest.raises(ValueError, match="unsupported"):
    load_examples(tmp_path / "a.txt")


def test_checkers():
  assert check_exact(" 42 ", "42") and not check_exact("42.0", "42")
  assert check_numeric("42.0", "42") and check_numeric("1,000", "1000")
  assert check_numeric("1/2", "0.5") and check_numeric("$3", "3")
  assert not check_numeric("41", "42") and not check_numeric("abc", "42")


@pytest.mark.skipif(
  importlib.util.find_spec("math_verify") is None,
  reason="math-verify not installed (optional extra rljax[tasks])",
)
def test_math_verify_checker():
  assert check_math_verify("\\frac{1}{2}", "0.5")
  assert not check_math_verify("\\frac{1}{3}", "0.5")
  assert check_math_verify("not math {{", "0.5") is False


def test_dataset_task_rewards():
  exs = [Example(prompt="p", answer="12", solution="<answer>12</answer>")]
  task = DatasetTask(exs, checker="numeric")
  assert task.reward(exs[0], "<answer>12.0</answer>") == 1.0
  assert task.reward(exs[0], "<answer>13</answer>") == 0.0
  assert task.reward(exs[0], "12") == -1.0
  boxed = DatasetTask(exs, answer_format="boxed")
  assert boxed.is_correct(exs[0], "so \\boxed{12}") and not boxed.is_correct(exs[0], "12")
  last = DatasetTask(exs, answer_format="last_number", checker=lambda p, g: p == g)
  assert last.is_correct(exs[0], "3 apples, 12")
  assert task.generate(0, 3) == exs * 3  # epochs repeat past the end
  with pytest.raises(ValueError, match="checker"):
    DatasetTask(exs, checker="fuzzy")


def test_generate_is_a_seeded_permutation():
  exs = [Example(prompt=str(i), answer=str(i), solution="") for i in range(10)]
  task = DatasetTask(exs)
  a = task.generate(0, 10)
  assert a == task.generate(0, 10) and sorted(e.prompt for e in a) == sorted(map(str, range(10)))


def test_get_task_names():
  for name in ("arithmetic_dag", "general_points", "countdown", "code_edit"):
    assert get_task(name).name == name
  assert get_task("arithmetic_dag", k=5).k == 5
  with pytest.raises(ValueError, match="valid: arithmetic_dag, general_points") as err:
    get_task("sudoku")
  assert "reasoning_gym:<name>" in str(err.value) and "jsonl:<path>" in str(err.value)
  assert "datasets:<path>" in task_names()
