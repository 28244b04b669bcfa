"""Pure steps: SFT lowers the loss, GRPO loss by hand, sharded GRPO step == single device."""

import functools

import jax
import numpy as np
import pytest

from rljax.train import GRPOConfig, MeshConfig, OptimConfig, _steps, make_mesh, make_optimizer
from rljax.train._loops import jit_step, place_state
from rljax.train._policy import TrainState, build_model, split

V, P, N, B = 24, 6, 5, 8


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  prompt = rng.integers(4, V, (B, P)).astype(np.int32)
  prompt_mask = np.ones((B, P), np.int32)
  prompt_mask[:3, :2] = 0  # left padding on some rows
  prompt[:3, :2] = 0
  tokens = rng.integers(4, V, (B, N)).astype(np.int32)
  mask = np.ones((B, N), np.int32)
  mask[1, 3:] = 0
  mask[4, 1:] = 0
  return {"prompt": prompt, "prompt_mask": prompt_mask, "tokens": tokens, "mask": mask}


@pytest.fixture(scope="module")
def model_parts(tiny_spec):
  return split(build_model(tiny_spec, V, seed=0))


def test_sft_step_lowers_the_loss(model_parts):
  graphdef, params, rest = model_parts
  opt = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant"))
  state = TrainState.create(params, opt, 0)
  step = jax.jit(functools.partial(_steps.sft_step, graphdef=graphdef, rest=rest, optimizer=opt))
  batch = _batch()
  losses = []
  for _ in range(4):
    state, m = step(state, batch)
    losses.append(float(m["loss"]))
  assert losses[-1] < losses[0] - 0.05, losses
  assert int(state.step) == 4


def test_sft_loss_and_grads_ignore_extra_padding(model_parts):
  """SFTConfig.pad_multiple trims padding per batch: more left padding on the prompts and more
  right padding on the answers change neither the loss nor its gradient."""
  graphdef, params, rest = model_parts
  batch = _batch()
  wide = {"prompt": np.pad(batch["prompt"], ((0, 0), (3, 0))),
          "prompt_mask": np.pad(batch["prompt_mask"], ((0, 0), (3, 0))),
          "tokens": np.pad(batch["tokens"], ((0, 0), (0, 4))),
          "mask": np.pad(batch["mask"], ((0, 0), (0, 4)))}
  fn = jax.jit(jax.value_and_grad(functools.partial(_steps.sft_loss, graphdef=graphdef,
                                                    rest=rest), has_aux=True))
  (loss, _), g = fn(params, batch)
  (loss_w, _), g_w = fn(params, wide)
  np.testing.assert_allclose(loss_w, loss, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), g_w, g)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean",
                                         "seq-mean-token-sum-norm"])
def test_grpo_loss_and_grads_ignore_extra_padding(model_parts, aggregation):
  """GRPOConfig.pad_multiple cuts shared padding: loss and gradient do not change, Dr. GRPO's
  constant included (max_new_tokens, not the batch's width), with the top-20% entropy mask."""
  graphdef, params, rest = model_parts
  cfg = GRPOConfig(group_size=2, prompts_per_step=4, aggregation=aggregation, max_new_tokens=N + 4,
                   entropy_top_rho=0.2)
  batch = _batch()
  batch["advantages"] = np.linspace(-1.0, 1.0, B).astype(np.float32)
  batch["old_logp"] = np.full((B, N), -3.0, np.float32)
  wide = {"prompt": np.pad(batch["prompt"], ((0, 0), (3, 0))),
          "prompt_mask": np.pad(batch["prompt_mask"], ((0, 0), (3, 0))),
          "tokens": np.pad(batch["tokens"], ((0, 0), (0, 4))),
          "mask": np.pad(batch["mask"], ((0, 0), (0, 4))),
          "old_logp": np.pad(batch["old_logp"], ((0, 0), (0, 4))),
          "advantages": batch["advantages"]}
  fn = jax.jit(jax.value_and_grad(functools.partial(_steps.grpo_loss, graphdef=graphdef, rest=rest,
                                                    cfg=cfg), has_aux=True))
  (loss, _), g = fn(params, batch)
  (loss_w, _), g_w = fn(params, wide)
  np.testing.assert_allclose(loss_w, loss, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g_w, g)


def test_grpo_loss_on_policy_is_minus_mean_advantage(model_parts):
  graphdef, params, rest = model_parts
  cfg = GRPOConfig(group_size=2, prompts_per_step=4, aggregation="token-mean")
  batch = _batch()
  adv = np.linspace(-1.0, 1.0, B).astype(np.float32)
  batch["advantages"] = adv
  loss, m = jax.jit(functools.partial(_steps.grpo_loss, graphdef=graphdef, rest=rest, cfg=cfg))(
      params, batch)
  n = batch["mask"].sum(-1)
  np.testing.assert_allclose(loss, -(adv * n).sum() / n.sum(), rtol=1e-5, atol=1e-6)
  assert float(m["clip_frac_low"]) == 0.0 and float(m["clip_frac_high"]) == 0.0
  np.testing.assert_allclose(m["approx_kl"], 0.0, atol=1e-7)


def _grpo_full_batch(params, graphdef, rest):
  batch = _batch(1)
  batch["advantages"] = np.linspace(-1.5, 1.5, B).astype(np.float32)
  logp = jax.jit(functools.partial(_steps.sequence_logprobs, graphdef=graphdef, rest=rest))(
      params, batch)
  noise = np.random.default_rng(2).normal(0, 0.3, (B, N)).astype(np.float32)
  batch["old_logp"] = np.asarray(logp) + noise * batch["mask"]
  batch["ref_logp"] = np.asarray(logp) - 0.1 * batch["mask"]
  batch["sampler_logp"] = np.asarray(logp) + 0.5 * noise * batch["mask"]
  return batch


def test_sharded_grpo_step_equals_single_device(model_parts):
  assert jax.device_count() == 8
  graphdef, params, rest = model_parts
  cfg = GRPOConfig(group_size=2, prompts_per_step=4, kl_coef=0.05, entropy_top_rho=0.5,
                   is_correction="tis", entropy_adv_alpha=0.4, dual_clip=3.0,
                   aggregation="seq-mean-token-mean")
  opt = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant"))
  batch = _grpo_full_batch(params, graphdef, rest)
  fn = functools.partial(_steps.grpo_step, graphdef=graphdef, rest=rest, optimizer=opt, cfg=cfg)
  out = {}
  for name, mesh in [("single", make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])),
                     ("sharded", make_mesh(MeshConfig(data=2, fsdp=4)))]:
    state = place_state(TrainState.create(params, opt, 0), mesh)
    step = jit_step(fn, state, batch, mesh)
    new_state, metrics = step(state, batch)
    out[name] = (jax.device_get(new_state.params), jax.device_get(metrics))
  (p1, m1), (p8, m8) = out["single"], out["sharded"]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), p1, p8)
  for k in m1:
    np.testing.assert_allclose(m1[k], m8[k], rtol=1e-5, atol=1e-5, err_msg=k)
  assert float(m1["kept_token_frac"]) < 1.0
  # The update moved the parameters.
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params)))
