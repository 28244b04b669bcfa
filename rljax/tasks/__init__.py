"""Verifiable tasks (generator, prompt, verifier, reward), tokenizers and dataset I/O."""

from rljax.tasks._arithmetic_dag import TEMPLATES as ARITHMETIC_TEMPLATES
from rljax.tasks._arithmetic_dag import ArithmeticDAG, count_operations
from rljax.tasks._base import (
  ANSWER_CLOSE,
  ANSWER_OPEN,
  Example,
  Task,
  as_rng,
  extract_answer,
  wrap_answer,
)
from rljax.tasks._batching import left_pad, pack_prompt_completion
from rljax.tasks._code_edit import CodeEdit
from rljax.tasks._countdown import Countdown
from rljax.tasks._datasets import (
  CHECKERS,
  DatasetTask,
  MalformedDataError,
  check_exact,
  check_math_verify,
  check_numeric,
  from_hf_dataset,
  load_examples,
  task_to_hf_dataset,
  to_hf_dataset,
  write_jsonl,
)
from rljax.tasks._expr import evaluate as evaluate_expression
from rljax.tasks._expr import solve as solve_expression
from rljax.tasks._general_points import (
  REWARD_BAD_NUMBERS,
  REWARD_CORRECT,
  REWARD_ILLEGAL,
  REWARD_OVER_LIMIT,
  REWARD_WRONG_VALUE,
  GeneralPoints,
  card_value,
)
from rljax.tasks._reasoning_gym import ReasoningGymTask, reasoning_gym_names
from rljax.tasks._registry import get_task, register_task, task_names
from rljax.tasks._tokenizers import (
  CharTokenizer,
  HFTokenizer,
  Tokenizer,
  load_hf_tokenizer,
  load_tokenizer,
  train_bpe,
)

__all__ = [
  "ANSWER_CLOSE",
  "ANSWER_OPEN",
  "ARITHMETIC_TEMPLATES",
  "CHECKERS",
  "REWARD_BAD_NUMBERS",
  "REWARD_CORRECT",
  "REWARD_ILLEGAL",
  "REWARD_OVER_LIMIT",
  "REWARD_WRONG_VALUE",
  "ArithmeticDAG",
  "CharTokenizer",
  "CodeEdit",
  "Countdown",
  "DatasetTask",
  "Example",
  "GeneralPoints",
  "HFTokenizer",
  "MalformedDataError",
  "ReasoningGymTask",
  "Task",
  "Tokenizer",
  "as_rng",
  "card_value",
  "check_exact",
  "check_math_verify",
  "check_numeric",
  "count_operations",
  "evaluate_expression",
  "extract_answer",
  "from_hf_dataset",
  "get_task",
  "left_pad",
  "load_examples",
  "load_hf_tokenizer",
  "load_tokenizer",
  "pack_prompt_completion",
  "reasoning_gym_names",
  "register_task",
  "solve_expression",
  "task_names",
  "task_to_hf_dataset",
  "to_hf_dataset",
  "train_bpe",
  "wrap_answer",
  "write_jsonl",
]
