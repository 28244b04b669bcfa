"""PPO and DPO steps: hand-worked starting values and a few descending steps."""

import functools
import math

import jax
import numpy as np

from rljax.train import DPOConfig, OptimConfig, PPOConfig, _steps, make_optimizer
from rljax.train._policy import TrainState, build_model, split

V, P, N, B = 24, 5, 4, 4


def _seq(seed):
  rng = np.random.default_rng(seed)
  mask = np.ones((B, N), np.int32)
  mask[0, 2:] = 0
  return (rng.integers(4, V, (B, P)).astype(np.int32), np.ones((B, P), np.int32),
          rng.integers(4, V, (B, N)).astype(np.int32), mask)


def test_dpo_starts_at_log2_and_descends(tiny_spec):
  graphdef, params, rest = split(build_model(tiny_spec, V, seed=1))
  prompt, pmask, chosen, cmask = _seq(0)
  _, _, rejected, rmask = _seq(1)
  batch = {"prompt": prompt, "prompt_mask": pmask, "chosen": chosen, "chosen_mask": cmask,
           "rejected": rejected, "rejected_mask": rmask}
  c, r = jax.jit(functools.partial(_steps.pair_logprobs, graphdef=graphdef, rest=rest))(
      params, batch)
  batch["ref_chosen"], batch["ref_rejected"] = np.asarray(c), np.asarray(r)
  cfg = DPOConfig(beta=0.5)
  opt = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant"))
  step = jax.jit(functools.partial(_steps.dpo_step, graphdef=graphdef, rest=rest, optimizer=opt,
                                   cfg=cfg))
  state = TrainState.create(params, opt, 0)
  state, m0 = step(state, batch)
  np.testing.assert_allclose(m0["loss"], math.log(2.0), rtol=1e-5)
  np.testing.assert_allclose(m0["reward_margin"], 0.0, atol=1e-6)
  for _ in range(3):
    state, m = step(state, batch)
  assert float(m["loss"]) < math.log(2.0) - 0.01
  assert float(m["reward_margin"]) > 0.0


def test_ppo_value_head_learns_returns(tiny_spec):
  graphdef, params, rest = split(build_model(tiny_spec, V, seed=2))
  cfg = PPOConfig(prompts_per_step=B, value_clip=10.0, value_coef=1.0)
  tree = {"policy": params, "value_head": _steps.value_head_init(tiny_spec.d_model, None)}
  prompt, pmask, tokens, mask = _seq(3)
  seq = {"prompt": prompt, "prompt_mask": pmask, "tokens": tokens, "mask": mask}
  statics = dict(graphdef=graphdef, rest=rest, cfg=cfg)
  old_logp, old_v = jax.jit(functools.partial(_steps.ppo_values, **statics))(tree, seq)
  np.testing.assert_array_equal(old_v, 0.0)  # zero-initialised head
  returns = np.where(mask > 0, 1.0, 0.0).astype(np.float32)
  batch = {**seq, "old_logp": np.asarray(old_logp), "old_values": np.asarray(old_v),
           "advantages": np.zeros((B, N), np.float32), "returns": returns}
  opt = make_optimizer(OptimConfig(learning_rate=3e-2, warmup_steps=0, schedule="constant"))
  step = jax.jit(functools.partial(_steps.ppo_step, optimizer=opt, **statics))
  state = TrainState.create(tree, opt, 0)
  state, m0 = step(state, batch)
  np.testing.assert_allclose(m0["value_loss"], 0.5, rtol=1e-5)  # 0.5 * (0 - 1)^2
  np.testing.assert_allclose(m0["policy_loss"], 0.0, atol=1e-7)  # zero advantages
  for _ in range(5):
    state, m = step(state, batch)
  assert float(m["value_loss"]) < 0.4
