"""Tests for TransformerConfig, Transformer (forward, cache, causality, padding) and the WD mask."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import absltest, parameterized
from flax import nnx

from rljax.models import Transformer, TransformerConfig, default_positions, weight_decay_mask

BASE = dict(vocab_size=37, d_model=16, num_layers=2, num_heads=4, num_kv_heads=2, mlp_dim=32)


def _model(**overrides):
  return Transformer(TransformerConfig(**{**BASE, **overrides}), rngs=nnx.Rngs(0))


def _jit_forward(model):
  graphdef, state = nnx.split(model)
  fwd = jax.jit(lambda s, t, m: nnx.merge(graphdef, s)(t, attention_mask=m))
  return lambda tokens, mask: fwd(state, tokens, mask)


def _decode_matches_full(test, model, tokens, mask, prefill_len, max_len):
  """Prefill + one-token decode steps (jitted through split/merge) equal the full forward."""
  graphdef, state = nnx.split(model)
  full = _jit_forward(model)(tokens, mask)

  @jax.jit
  def decode(state, tokens, positions, mask, cache):
    return nnx.merge(graphdef, state).decode(tokens, positions, mask, cache)

  pos = default_positions(mask)
  cache = model.init_cache(tokens.shape[0], max_len)
  p = prefill_len
  logits, cache = decode(state, tokens[:, :p], pos[:, :p], mask[:, :p], cache)
  outs = [logits]
  for i in range(p, tokens.shape[1]):
    sl = slice(i, i + 1)
    logits, cache = decode(state, tokens[:, sl], pos[:, sl], mask[:, sl], cache)
    outs.append(logits)
  stepped = jnp.concatenate(outs, axis=1)
  real = np.asarray(mask, bool)
  test.assertEqual(stepped.dtype, jnp.float32)
  np.testing.assert_allclose(
      np.asarray(stepped)[real], np.asarray(full)[real], atol=1e-5, rtol=1e-5
  )


class ConfigTest(parameterized.TestCase):

  def test_resolves_defaults(self):
    cfg = TransformerConfig(**{**BASE, "num_kv_heads": None})
    self.assertEqual(cfg.num_kv_heads, 4)
    self.assertEqual(cfg.head_dim, 4)
    self.assertEqual(cfg.mixers, ("attention", "attention"))
    cfg = TransformerConfig(**BASE, mixers=["attention", "deltanet"])
    self.assertEqual(cfg.mixers, ("attention", "deltanet"))
    hash(cfg)  # frozen and hashable (usable as a static jit argument)

  @parameterized.parameters(
      ("vocab_size", 0),
      ("num_kv_heads", 3),
      ("norm", "layernorm"),
      ("mixers", ("attention",)),
      ("mixers", "mamba"),
      ("residual", "mul"),
      ("rope_theta", 0.0),
      ("norm_eps", 0.0),
      ("dyt_alpha_mlp", -1.0),
      ("head_dim", 5),
      ("delta_mode", "parallel"),
      ("deep_delta_beta_init", 2.5),
      ("deep_delta_value", "mlp"),
      ("delta_chunk_size", 0),
  )
  def test_invalid_field_is_named(self, field, value):
    with self.assertRaisesRegex(ValueError, field):
      TransformerConfig(**{**BASE, field: value})

  def test_frozen(self):
    cfg = TransformerConfig(**BASE)
    with self.assertRaises(dataclasses.FrozenInstanceError):
      cfg.d_model = 8


class TransformerTest(chex.TestCase):

  @chex.variants(with_jit=True)
  def test_forward_shapes_and_hidden_contract(self):
    model = _model(tie_embeddings=True)
    graphdef, state = nnx.split(model)
    tokens = jnp.array([[1, 2, 3], [4, 5, 6]])

    @self.variant
    def run(state, tokens):
      m = nnx.merge(graphdef, state)
      h, cache = m.forward_hidden(tokens)
      return m(tokens), h, m.logits(h), m.lm_head_kernel(), cache

    logits, h, logits2, w, cache = run(state, tokens)
    self.assertIsNone(cache)
    chex.assert_shape(logits, (2, 3, 37))
    chex.assert_shape(h, (2, 3, 16))
    self.assertEqual(logits.dtype, jnp.float32)
    np.testing.assert_allclose(logits, logits2)
    np.testing.assert_allclose(w, model.embed.embedding.value.T)  # tied
    np.testing.assert_allclose(logits, jnp.einsum("btd,dv->btv", h, w), rtol=1e-5, atol=1e-6)

  def test_untied_head_and_bf16(self):
    model = _model(dtype=jnp.bfloat16, qk_norm=True, attention_bias=True)
    chex.assert_shape(model.lm_head_kernel(), (16, 37))
    logits = _jit_forward(model)(jnp.array([[1, 2, 3]]), jnp.ones((1, 3), jnp.int32))
    self.assertEqual(logits.dtype, jnp.float32)
    self.assertTrue(np.all(np.isfinite(logits)))

  def test_causality_gradient_is_exactly_zero(self):
    model = _model(norm="dyt")
    graphdef, state = nnx.split(model)
    x = jax.random.normal(jax.random.key(0), (1, 5, 16))
    pos = jnp.arange(5)[None]
    mask = jnp.ones((1, 5), jnp.bool_)
    t = 2

    def out_t(x):
      m = nnx.merge(graphdef, state)
      for block in m.layers:
        x, _ = block(x, positions_BT=pos, mask_BT=mask)
      return m.logits(m.final_norm(x))[0, t].sum()

    g = jax.jit(jax.grad(out_t))(x)
    np.testing.assert_array_equal(g[0, t + 1 :], 0.0)
    self.assertTrue(np.all(np.abs(g[0, : t + 1]).sum(-1) > 0))

  def test_padding_invariance(self):
    model = _model(qk_norm=True)
    row = jnp.array([5, 6, 7, 8])
    tokens = jnp.stack(
        [jnp.concatenate([row, jnp.array([0, 0])]), jnp.concatenate([jnp.array([9, 3]), row])]
    )
    mask = jnp.array([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]])
    logits = _jit_forward(model)(tokens, mask)
    np.testing.assert_allclose(logits[1, 2:], logits[0, :4], atol=1e-5, rtol=1e-5)

  def test_cached_decode_equals_full_forward(self):
    model = _model(attention_bias=True)
    tokens = jnp.array([[1, 2, 3, 4, 5, 6], [0, 0, 7, 8, 9, 10]])
    mask = jnp.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    _decode_matches_full(self, model, tokens, mask, prefill_len=3, max_len=8)

  def test_decode_requires_cache_and_positions(self):
    model = _model()
    tokens = jnp.array([[1, 2]])
    with self.assertRaisesRegex(ValueError, "cache"):
      model.decode(tokens, jnp.array([[0, 1]]), jnp.ones((1, 2)), None)
    with self.assertRaisesRegex(ValueError, "positions"):
      model.forward_hidden(tokens, cache=model.init_cache(1, 4))

  def test_remat_matches(self):
    tokens = jnp.array([[1, 2, 3, 4]])

    def loss_and_grad(remat):
      model = _model(remat=remat)
      graphdef, state = nnx.split(model)
      loss = lambda s: nnx.merge(graphdef, s)(tokens).mean()
      return jax.jit(jax.value_and_grad(loss))(state)

    (l0, g0), (l1, g1) = loss_and_grad(False), loss_and_grad(True)
    np.testing.assert_allclose(l0, l1, rtol=1e-6)
    chex.assert_trees_all_close(g0, g1, rtol=1e-5, atol=1e-7)

  def test_dyt_alpha_inits_per_position(self):
    model = _model(
        norm="dyt", dyt_alpha_attn=0.8, dyt_alpha_mlp=0.2, dyt_alpha_final=0.3, dyt_bias=False,
        embedding_scale=True,
    )
    for block in model.layers:
      np.testing.assert_allclose(block.mixer_norm.alpha.value, 0.8)
      np.testing.assert_allclose(block.mlp_norm.alpha.value, 0.2)
      self.assertIsNone(block.mixer_norm.bias)
    np.testing.assert_allclose(model.final_norm.alpha.value, 0.3)
    np.testing.assert_allclose(model.embed_scale.value, 4.0)  # sqrt(16)


HYBRID = dict(
    mixers=("gated_deltanet", "attention", "deltanet"), num_layers=3, delta_chunk_size=4,
    residual="deep_delta", deep_delta_value="linear",
)


class DeltaMixerTransformerTest(parameterized.TestCase):
  """The delta-rule mixers (and hybrids) inside the Transformer: cache, causality, padding."""

  @parameterized.named_parameters(
      ("deltanet", dict(mixers="deltanet", num_layers=1, delta_chunk_size=4)),
      ("gated_deltanet", dict(mixers="gated_deltanet", num_layers=1, delta_chunk_size=4)),
      ("hybrid", HYBRID),
  )
  def test_cached_decode_equals_full_forward(self, overrides):
    model = _model(**overrides)
    tokens = jnp.array([[1, 2, 3, 4, 5, 6, 7], [0, 0, 7, 8, 9, 10, 11]])
    mask = jnp.array([[1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]])
    _decode_matches_full(self, model, tokens, mask, prefill_len=5, max_len=8)

  def test_causality_gradient_is_exactly_zero(self):
    model = _model(**HYBRID)
    graphdef, state = nnx.split(model)
    x = jax.random.normal(jax.random.key(0), (1, 7, 16))
    pos = jnp.arange(7)[None]
    mask = jnp.ones((1, 7), jnp.bool_)
    t = 4

    def out_t(x):
      m = nnx.merge(graphdef, state)
      for block in m.layers:
        x, _ = block(x, positions_BT=pos, mask_BT=mask)
      return m.final_norm(x)[0, t].sum()

    g = jax.jit(jax.grad(out_t))(x)
    np.testing.assert_array_equal(g[0, t + 1 :], 0.0)
    self.assertTrue(np.all(np.abs(g[0, : t + 1]).sum(-1) > 0))

  def test_padding_invariance(self):
    model = _model(**HYBRID)
    row = jnp.array([5, 6, 7, 8, 9])
    tokens = jnp.stack(
        [jnp.concatenate([row, jnp.array([0, 0, 0])]), jnp.concatenate([jnp.array([9, 3, 1]), row])]
    )
    mask = jnp.array([[1, 1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1]])
    logits = _jit_forward(model)(tokens, mask)
    np.testing.assert_allclose(logits[1, 3:], logits[0, :5], atol=1e-5, rtol=1e-5)


  def test_deep_delta_beta_zero_is_identity(self):
    model = _model(residual="deep_delta", mixers="deltanet")
    for block in model.layers:  # beta = 2 sigmoid(-1e4) = 0 exactly
      for res in (block.mixer_residual, block.mlp_residual):
        res.beta_proj.bias[...] = jnp.full_like(res.beta_proj.bias[...], -1e4)
    graphdef, state = nnx.split(model)
    tokens = jnp.array([[1, 2, 3]])

    @jax.jit
    def run(state):
      m = nnx.merge(graphdef, state)
      return m.forward_hidden(tokens)[0], m.final_norm(m.embed(tokens))

    h, expected = run(state)
    np.testing.assert_array_equal(h, expected)


class WeightDecayMaskTest(absltest.TestCase):

  def test_mask_excludes_norms_alpha_and_biases(self):
    model = _model(norm="dyt", attention_bias=True, qk_norm=True, embedding_scale=True)
    params = nnx.state(model, nnx.Param)
    flat = {
        "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path): v
        for path, v in jax.tree_util.tree_flatten_with_path(weight_decay_mask(params))[0]
    }
    decayed = {k for k, v in flat.items() if v}
    self.assertIn("layers/0/mixer/q_proj/kernel/value", decayed)
    self.assertIn("layers/1/mlp/down_proj/kernel/value", decayed)
    self.assertIn("embed/embedding/value", decayed)
    for name in (
        "layers/0/mixer/q_proj/bias/value",
        "layers/0/mixer/q_norm/scale/value",
        "layers/0/mixer_norm/alpha/value",
        "layers/0/mixer_norm/weight/value",
        "layers/0/mlp_norm/bias/value",
        "final_norm/alpha/value",
        "embed_scale/value",
    ):
      self.assertIn(name, flat)
      self.assertFalse(flat[name], name)

  def test_with_optax_adamw(self):
    model = _model(norm="dyt")
    params = nnx.state(model, nnx.Param)
    tx = optax.adamw(1e-2, weight_decay=0.5, mask=weight_decay_mask)

    @jax.jit
    def update(params):
      zeros = jax.tree.map(jnp.zeros_like, params)
      return tx.update(zeros, tx.init(params), params)[0]

    updates = update(params)
    # zero gradients: only decayed leaves move
    np.testing.assert_array_equal(updates["final_norm"]["alpha"].value, 0.0)
    self.assertTrue(np.all(np.asarray(updates["lm_head"]["kernel"].value) != 0))


if __name__ == "__main__":
  absltest.main()
