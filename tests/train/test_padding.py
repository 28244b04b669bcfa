"""Bucketed padding: ``pad_multiple`` of ``SFTConfig``, ``GRPOConfig``, ``PPOConfig`` and
``DPOConfig`` trains the same
model as fixed padding to the task's maxima, on fewer padded tokens (tiny runs, 8 CPU
devices)."""

import json

import numpy as np

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


def _metrics(run_dir, phase, *keys):
  rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
  rows = [r for r in rows if r.get("phase") == phase]
  return [np.array([r[k] for r in rows]) for k in keys]


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


def test_grpo_pad_multiple_gives_the_fixed_padding_run(tmp_path, monkeypatch):
  widths = []
  trim = _data.trim_padding

  def spy(batch, multiple):
    out = trim(batch, multiple)
    widths.append((multiple, out["prompt"].shape[1], out["tokens"].shape[1]))
    return out

  monkeypatch.setattr(_data, "trim_padding", spy)
  out = {}
  for m in (0, 8):
    run_grpo(GRPOJob(
        run_dir=str(tmp_path / f"m{m}"), seed=2, model=MODEL, task=TASK,
        sft=SFTConfig(steps=30, batch_size=8), sft_optim=OPTIM, optim=OPTIM,
        grpo=GRPOConfig(steps=2, prompts_per_step=4, group_size=2, max_new_tokens=48,
                        epochs=2, aggregation="seq-mean-token-sum-norm", pad_multiple=m,
                        overlong_max_len=48, overlong_cache_len=24),
        **QUIET))
    out[m] = _metrics(tmp_path / f"m{m}", "grpo", "loss", "reward_mean", "response_length")
  for a, b in zip(out[8], out[0]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
  assert np.all(out[0][0] != 0)  # overlong shaping gives non-zero advantages: a real update
  cut = [(p, n) for m, p, n in widths if m == 8]
  assert [w for w in widths if w[0] == 0] == [(0, 64, 48)] * 2  # fixed: the maxima
  assert len(cut) == 2 and all(p < 64 and n < 48 and p % 8 == n % 8 == 0 for p, n in cut), cut


def test_ppo_pad_multiple_gives_the_fixed_padding_run(tmp_path, monkeypatch):
  widths = []
  trim = _data.trim_padding

  def spy(batch, multiple):
    out = trim(batch, multiple)
    widths.append((multiple, out["prompt"].shape[1], out["tokens"].shape[1]))
    return out

  monkeypatch.setattr(_data, "trim_padding", spy)
  out = {}
  for m in (0, 8):
    run_ppo(PPOJob(
        run_dir=str(tmp_path / f"m{m}"), seed=2, model=MODEL, task=TASK,
        sft=SFTConfig(steps=60, batch_size=8), sft_optim=OPTIM, optim=OPTIM,
        ppo=PPOConfig(steps=2, prompts_per_step=8, max_new_tokens=48, epochs=2, pad_multiple=m),
        **QUIET))
    out[m] = _metrics(tmp_path / f"m{m}", "ppo", "loss", "reward_mean", "response_length")
  for a, b in zip(out[8], out[0]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  cut = [(p, n) for m, p, n in widths if m == 8]
  assert [w for w in widths if w[0] == 0] == [(0, 64, 48)] * 2  # fixed: the maxima
  assert len(cut) == 2 and all(p < 64 and p % 8 == n % 8 == 0 for p, n in cut), cut
  assert min(n for _, n in cut) < 48, cut  # a step whose completions were cut too


def test_dpo_pad_multiple_gives_the_fixed_padding_run(tmp_path, monkeypatch):
  widths = []
  trim = _data.trim_padding

  def spy(batch, multiple):
    out = trim(batch, multiple)
    widths.append((multiple, out["prompt"].shape[1], out["chosen"].shape[1]))
    return out

  monkeypatch.setattr(_data, "trim_padding", spy)
  out = {}
  for m in (0, 8):
    run_dpo(DPOJob(
        run_dir=str(tmp_path / f"m{m}"), seed=2, model=MODEL, task=TASK,
        sft=SFTConfig(steps=60, batch_size=8), sft_optim=OPTIM, optim=OPTIM,
        dpo=DPOConfig(steps=3, batch_size=8, num_pairs=16, samples_per_prompt=2, pad_multiple=m),
        **QUIET))
    out[m] = _metrics(tmp_path / f"m{m}", "dpo", "loss", "tokens")
  for a, b in zip(out[8], out[0]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  cut = [(p, n) for m, p, n in widths if m == 8]
  assert [w for w in widths if w[0] == 0] == [(0, 64, 48)] * 3  # fixed: the maxima
  assert len(cut) == 3 and all(p < 64 and p % 8 == n % 8 == 0 for p, n in cut), cut
  assert min(n for _, n in cut) < 48, cut  # a step whose completions were cut too
