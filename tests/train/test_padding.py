"""Bucketed padding: ``pad_multiple`` of ``SFTConfig``, ``GRPOConfig``, ``PPOConfig`` and
``DPOConfig`` trains the same model as fixed padding to the task's maxima, on fewer padded
tokens (tiny runs, 8 CPU devices)."""

import json

import numpy as np
import pytest

from rljax.train import (
  CheckpointConfig,
  DPOConfig,
  DPOJob,
  GRPOConfig,
  GRPOJob,
  LogConfig,
  ModelSpec,
  OptimConfig,
  PPOConfig,
  PPOJob,
  SFTConfig,
  SFTJob,
  TaskSpec,
  _data,
)
from rljax.train._loops import run_dpo, run_grpo, run_ppo, run_sft

MODEL = ModelSpec(d_model=16, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=32)
# k = 1-2 problems: prompts and worked answers well under the maxima 64 / 48.
TASK = TaskSpec(difficulty=("k=1,2", "template=compact"), num_eval=0, max_prompt_len=64,
                max_answer_len=48)
OPTIM = OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant")
QUIET = {"checkpoint": CheckpointConfig(every=0, keep=1),
         "log": LogConfig(progress=False, tensorboard=False, plot=False)}
# A warm start that ends most samples with EOS, so that completions leave padding to cut.
WARM = {"sft": SFTConfig(steps=60, batch_size=8), "sft_optim": OPTIM, "optim": OPTIM}


def _metrics(run_dir, phase, *keys):
  rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
  rows = [r for r in rows if r.get("phase") == phase]
  return [np.array([r[k] for r in rows]) for k in keys]


@pytest.fixture
def widths(monkeypatch):
  """``(pad_multiple, prompt width, completion width)`` of every ``trim_padding`` call."""
  seen = []
  trim = _data.trim_padding

  def spy(batch, multiple):
    out = trim(batch, multiple)
    comp = next(v for k, v in out.items() if k.endswith("mask") and k != "prompt_mask")
    seen.append((multiple, out["prompt"].shape[1], comp.shape[1]))
    return out

  monkeypatch.setattr(_data, "trim_padding", spy)
  return seen


def _same_runs(tmp_path, run, make_job, phase, keys, widths, steps):
  """``run(make_job(run_dir, m))`` for m = 0 and 8: equal metrics, and real cuts at m = 8."""
  out = {}
  for m in (0, 8):
    run(make_job(str(tmp_path / f"m{m}"), m))
    out[m] = _metrics(tmp_path / f"m{m}", phase, *keys)
  for a, b in zip(out[8], out[0]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert [w for w in widths if w[0] == 0] == [(0, 64, 48)] * steps  # fixed: the maxima
  cut = [(p, n) for m, p, n in widths if m == 8]
  assert len(cut) == steps and all(p < 64 and p % 8 == n % 8 == 0 for p, n in cut), cut
  assert min(n for _, n in cut) < 48, cut  # a step whose completions were cut too
  return out[0]


def test_sft_pad_multiple_gives_the_fixed_padding_losses(tmp_path):
  out = {}
  for m in (0, 8):
    run_sft(SFTJob(run_dir=str(tmp_path / f"m{m}"), seed=1, model=MODEL, task=TASK,
                   sft=SFTConfig(steps=4, batch_size=8, pad_multiple=m), optim=OPTIM, **QUIET))
    out[m] = _metrics(tmp_path / f"m{m}", "sft", "loss", "tokens")
  (loss0, tok0), (loss8, tok8) = out[0], out[8]
  assert len(loss0) == 4 and loss0[-1] < loss0[0]
  np.testing.assert_array_equal(tok8, tok0)  # the same answer tokens each step
  np.testing.assert_allclose(loss8, loss0, rtol=2e-5)


def test_grpo_pad_multiple_gives_the_fixed_padding_run(tmp_path, widths):
  # Dr. GRPO's aggregation (its constant must stay max_new_tokens); overlong shaping gives
  # non-zero advantages even when every answer is wrong, so the updates are real.
  loss, _, _ = _same_runs(tmp_path, run_grpo, lambda d, m: GRPOJob(
      run_dir=d, seed=2, model=MODEL, task=TASK, **WARM, **QUIET,
      grpo=GRPOConfig(steps=2, prompts_per_step=4, group_size=2, max_new_tokens=48, epochs=2,
                      aggregation="seq-mean-token-sum-norm", overlong_max_len=48,
                      overlong_cache_len=24, pad_multiple=m)),
      "grpo", ("loss", "reward_mean", "response_length"), widths, steps=2)
  assert np.all(loss != 0)


def test_ppo_pad_multiple_gives_the_fixed_padding_run(tmp_path, widths):
  _same_runs(tmp_path, run_ppo, lambda d, m: PPOJob(
      run_dir=d, seed=2, model=MODEL, task=TASK, **WARM, **QUIET,
      ppo=PPOConfig(steps=2, prompts_per_step=8, max_new_tokens=48, epochs=2, pad_multiple=m)),
      "ppo", ("loss", "reward_mean", "response_length"), widths, steps=2)


def test_dpo_pad_multiple_gives_the_fixed_padding_run(tmp_path, widths):
  _same_runs(tmp_path, run_dpo, lambda d, m: DPOJob(
      run_dir=d, seed=2, model=MODEL, task=TASK, **WARM, **QUIET,
      dpo=DPOConfig(steps=3, batch_size=8, num_pairs=16, samples_per_prompt=2, pad_multiple=m)),
      "dpo", ("loss", "tokens"), widths, steps=3)
