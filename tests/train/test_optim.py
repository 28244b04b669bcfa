"""Optimizer: weight-decay mask, schedule, clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rljax.train import OptimConfig, learning_rate_schedule, make_optimizer, weight_decay_mask


def test_weight_decay_mask_excludes_norms_alpha_and_biases():
  params = {
    "embed": {"embedding": jnp.ones((8, 4))},
    "layers": {"0": {"attn": {"q_proj": {"kernel": jnp.ones((4, 4)), "bias": jnp.ones((4,))},
                              "out": {"kernel": jnp.ones((4, 4))}},
                     "pre_norm": {"scale": jnp.ones((4,))},
                     "dyt": {"alpha": jnp.ones(()), "weight": jnp.ones((4,))}}},
    "final_norm": {"scale": jnp.ones((4,))},
  }
  mask = weight_decay_mask(params)
  assert mask["embed"]["embedding"] is True
  assert mask["layers"]["0"]["attn"]["q_proj"]["kernel"] is True
  assert mask["layers"]["0"]["attn"]["out"]["kernel"] is True
  assert mask["layers"]["0"]["attn"]["q_proj"]["bias"] is False
  assert mask["layers"]["0"]["pre_norm"]["scale"] is False
  assert mask["layers"]["0"]["dyt"]["alpha"] is False
  assert mask["layers"]["0"]["dyt"]["weight"] is False
  assert mask["final_norm"]["scale"] is False


def test_weight_decay_mask_on_nnx_state():
  class M(nnx.Module):
    def __init__(self, rngs):
      self.lin = nnx.Linear(3, 2, rngs=rngs)
      self.norm = nnx.RMSNorm(2, rngs=rngs)

  state = nnx.state(M(nnx.Rngs(0)), nnx.Param)
  flat = {jax.tree_util.keystr(p): v for p, v in
          jax.tree_util.tree_flatten_with_path(weight_decay_mask(state))[0]}
  assert [v for k, v in flat.items() if "kernel" in k] == [True]
  assert not any(v for k, v in flat.items() if "bias" in k or "scale" in k)


def test_decay_applies_only_where_masked():
  params = {"w": jnp.ones((2, 2)), "norm": {"scale": jnp.ones((2,))}}
  cfg = OptimConfig(learning_rate=0.1, warmup_steps=0, schedule="constant", weight_decay=0.5,
                    grad_clip=0.0)
  opt = make_optimizer(cfg)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = opt.update(zeros, opt.init(params), params)
  np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * np.ones((2, 2)), rtol=1e-6)
  np.testing.assert_allclose(updates["norm"]["scale"], 0.0)


def test_schedule_warmup_then_cosine():
  cfg = OptimConfig(learning_rate=1.0, warmup_steps=4, decay_steps=10, min_lr_ratio=0.1)
  lr = learning_rate_schedule(cfg)
  np.testing.assert_allclose([lr(0), lr(2), lr(4)], [0.0, 0.5, 1.0], atol=1e-6)
  np.testing.assert_allclose(lr(14), 0.1, atol=1e-6)
  assert 0.1 < float(lr(9)) < 1.0


def test_grad_clipping():
  cfg = OptimConfig(learning_rate=1.0, warmup_steps=0, schedule="constant", grad_clip=1.0)
  opt = make_optimizer(cfg)
  p = {"w": jnp.zeros((4,))}
  g = {"w": jnp.full((4,), 100.0)}
  state = opt.init(p)
  clipped, _ = optax.clip_by_global_norm(1.0).update(g, optax.EmptyState())
  np.testing.assert_allclose(optax.tree.norm(clipped), 1.0, rtol=1e-6)
  upd, _ = opt.update(g, state, p)
  assert np.all(np.isfinite(upd["w"]))
