"""Tests of rljax.rollout: the one-uniform sampler and the jitted prefill + decode loop."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest
from flax import nnx
from scipy import stats

from rljax import rollout
from rljax.rollout import _inverse_cdf_index, _nucleus, sample_logits, sampling_log_probs

# ------------------------------------------------------------------------------------------------
# Sampler.


class InverseCdfTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_worked(self):
    # weights [1, 0, 3, 0] -> CDF [1, 1, 4, 4] / 4: u < 0.25 -> 0, else 2; zeros never chosen.
    w = jnp.array([[1.0, 0.0, 3.0, 0.0]] * 5)
    u = jnp.array([0.0, 0.2, 0.25, 0.7, 0.9999999])
    idx = self.variant(_inverse_cdf_index)(w, u)
    np.testing.assert_array_equal(idx, [0, 0, 2, 2, 2])

  @chex.variants(with_jit=True, without_jit=True)
  def test_two_level_search_over_blocks(self):
    # V = 100 (blocks of 16, the last one padded): one unit of weight at 7, 40, 99.
    w = jnp.zeros((4, 100)).at[:, jnp.array([7, 40, 99])].set(1.0)
    u = jnp.array([0.1, 0.34, 0.5, 0.99])
    idx = self.variant(_inverse_cdf_index)(w, u)
    np.testing.assert_array_equal(idx, [7, 40, 40, 99])

  @chex.variants(with_jit=True, without_jit=True)
  def test_nucleus_hand_worked(self):
    # probs [1/8, 1/2, 1/8, 1/4] sorted: 1/2 (idx 1), 1/4 (idx 3), then the tied 1/8 by index.
    w = jnp.array([[0.125, 0.5, 0.125, 0.25]] * 3)
    out = self.variant(lambda w: jnp.stack([_nucleus(w[i:i + 1], p)[0]
                                            for i, p in enumerate([0.5, 0.75, 0.8])]))(w)
    np.testing.assert_allclose(
        out, [[0, 0.5, 0, 0], [0, 0.5, 0, 0.25], [0.125, 0.5, 0, 0.25]]
    )


class SampleLogitsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_greedy_and_top1(self):
    logits = jnp.log(jnp.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]))
    tok, lp = self.variant(functools.partial(sample_logits, temperature=0.0))(
        logits, jax.random.key(0)
    )
    np.testing.assert_array_equal(tok, [1, 0])
    np.testing.assert_allclose(lp, np.log([0.5, 0.6]), rtol=1e-6)  # model log-prob, T = 1
    tok, lp = self.variant(functools.partial(sample_logits, temperature=0.5, top_k=1))(
        logits, jax.random.key(0)
    )
    np.testing.assert_array_equal(tok, [1, 0])
    np.testing.assert_allclose(lp, [0.0, 0.0], atol=1e-7)  # renormalised over one token

  def test_rng_determinism(self):
    logits = jax.random.normal(jax.random.key(1), (64, 1000))
    f = jax.jit(lambda k: sample_logits(logits, k, temperature=1.0))
    a, b, c = f(jax.random.key(2)), f(jax.random.key(2)), f(jax.random.key(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.mean(np.asarray(a[0]) != np.asarray(c[0])) > 0.9


@pytest.mark.parametrize(
    "kw", [{}, {"top_k": 4}, {"top_p": 0.8}, {"top_k": 6, "top_p": 0.7}], ids=str
)
def test_empirical_distribution_matches_softmax(kw):
  logits = jnp.array([[1.0, 2.0, 0.5, -1.0, 3.0, 0.0, 2.5, -0.5, 1.5, -2.0]])
  n = 20_000
  draw = jax.jit(jax.vmap(lambda k: sample_logits(logits, k, temperature=0.8, **kw)[0][0]))
  toks = np.asarray(draw(jax.random.split(jax.random.key(0), n)))
  p = np.exp(np.asarray(sampling_log_probs(logits, temperature=0.8, **kw), np.float64)[0])
  counts = np.bincount(toks, minlength=10)
  assert counts[p == 0].sum() == 0  # never outside the allowed set
  kept = p > 0
  _, pvalue = stats.chisquare(counts[kept], n * p[kept] / p[kept].sum())
  assert pvalue > 1e-3, (counts, n * p)


@functools.partial(jax.jit, static_argnames=("top_k", "nucleus"))
def _sample_with_references(logits_BV, key, temperature, top_p, *, top_k, nucleus):
  """The sampler and the reference log-probs (exact, and with top_p + 1e-5 slack), one program
  per (top_k, nucleus) with the temperature and top_p traced."""
  tp, loose = (top_p, jnp.minimum(top_p + 1e-5, 1.0)) if nucleus else (None, None)
  kw = dict(temperature=temperature, top_k=top_k)
  tok, lp = sample_logits(logits_BV, key, top_p=tp, greedy=False, **kw)
  return tok, lp, sampling_log_probs(logits_BV, top_p=tp, **kw), sampling_log_probs(
      logits_BV, top_p=loose, **kw)


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(
    logits=st.lists(st.integers(-800, 800), min_size=24, max_size=24, unique=True),
    temperature=st.sampled_from([0.3, 1.0, 2.0]),
    top_k=st.sampled_from([None, 5]),
    top_p=st.sampled_from([None, 0.05, 0.5, 0.9]),
    seed=st.integers(0, 2**31 - 1),
)
def test_filters_never_sample_outside_allowed_set(logits, temperature, top_k, top_p, seed):
  logits = np.asarray(logits, np.float32) / 100  # distinct values: no ties at a boundary
  logits_BV = jnp.tile(jnp.asarray(logits)[None], (8, 1))
  tok, lp, ref, loose = jax.device_get(_sample_with_references(
      logits_BV, jax.random.key(seed), np.float32(temperature), np.float32(top_p or 1.0),
      top_k=top_k, nucleus=top_p is not None))
  rows = np.arange(8)
  assert np.all(np.isfinite(loose[rows, tok]))  # inside the allowed set
  assert np.all(np.isfinite(lp)) and np.all(lp <= 1e-6)
  exact = np.isfinite(ref[rows, tok])
  np.testing.assert_allclose(lp[exact], ref[rows, tok][exact], atol=1e-5)
  if top_k is not None:
    assert np.all(logits[tok] >= np.sort(logits)[::-1][top_k - 1])


# ------------------------------------------------------------------------------------------------
# Rollouts on tiny models.


def _tiny(mixers, vocab=48, seed=0):
  from rljax.models import Transformer, TransformerConfig

  cfg = TransformerConfig(
      vocab_size=vocab, d_model=32, num_layers=len(mixers), num_heads=4, num_kv_heads=2,
      mlp_dim=64, mixers=tuple(mixers), init_std=0.2,
  )
  try:
    return Transformer(cfg, rngs=nnx.Rngs(seed))
  except NotImplementedError as e:
    pytest.skip(f"mixer not available in rljax.models yet: {e}")


@functools.cache
def _attention_model():
  return _tiny(["attention", "attention"])


def _prompts(b, p, vocab, seed=0):
  """Left-padded prompts: row 0 has 1 real token, row 1 is full length, others in between."""
  rs = np.random.RandomState(seed)
  lengths = np.concatenate([[1, p], rs.randint(1, p + 1, size=b - 2)])
  mask = (np.arange(p)[None, :] >= (p - lengths)[:, None]).astype(np.int32)
  tokens = np.where(mask == 1, rs.randint(1, vocab, size=(b, p)), 0).astype(np.int32)
  return tokens, mask


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, state, tokens_BT, mask_BT):
  return nnx.merge(graphdef, state)(tokens_BT, attention_mask=mask_BT)


_FWD_ROWS, _FWD_LEN = 8, 40  # one reference-forward shape per model: a single compilation


def _teacher_forced_logits(model, prompt, pmask, res):
  """fp32 logits ``[R, N, V]`` of a full forward over prompt + completion, predicting each
  completion token (rows of the same prompt adjacent). Rows and columns are zero-padded at
  the end (mask 0) to one fixed shape, which does not change the real positions."""
  s = res.tokens.shape[0] // prompt.shape[0]
  prompt, pmask = np.repeat(prompt, s, axis=0), np.repeat(pmask, s, axis=0)
  seq = np.concatenate([prompt, np.asarray(res.tokens)], axis=1)
  mask = np.concatenate([pmask, np.asarray(res.mask, np.int32)], axis=1)
  r, t = seq.shape
  assert r <= _FWD_ROWS and t <= _FWD_LEN
  seq = np.pad(seq, ((0, _FWD_ROWS - r), (0, _FWD_LEN - t)))
  mask = np.pad(mask, ((0, _FWD_ROWS - r), (0, _FWD_LEN - t)))
  graphdef, state = nnx.split(model)
  logits = np.asarray(_forward(graphdef, state, jnp.asarray(seq), jnp.asarray(mask)))
  p, n = prompt.shape[1], res.tokens.shape[1]
  return logits[:r, p - 1:p - 1 + n]


def _check_greedy_is_argmax(model, prompt, pmask, res):
  """Greedy tokens == argmax of the full forward at every valid step (by causality and
  induction, the same as re-running the forward token by token)."""
  logits = _teacher_forced_logits(model, prompt, pmask, res)
  m = np.asarray(res.mask)
  np.testing.assert_array_equal(np.asarray(res.tokens)[m], logits.argmax(-1)[m])


def _check_eos_padding(res, eos, pad):
  tokens, mask = np.asarray(res.tokens), np.asarray(res.mask)
  logprobs = np.asarray(res.logprobs)
  for row_t, row_m, row_lp, length, fin in zip(tokens, mask, logprobs, np.asarray(res.lengths),
                                              np.asarray(res.finished)):
    hits = np.flatnonzero(np.isin(row_t[:length], eos))
    assert bool(fin) == (len(hits) > 0)
    if fin:
      assert hits[0] == length - 1  # stops at the first EOS, which is valid
    np.testing.assert_array_equal(row_m, np.arange(len(row_m)) < length)
    assert np.all(row_t[length:] == pad)
    assert np.all(row_lp[~row_m] == 0)


_SAMPLED = dict(max_new_tokens=9, temperature=0.7, num_samples=2, eos_id=5, pad_id=0)


class RolloutTest(absltest.TestCase):

  def test_attention_greedy_eos_buckets_no_recompile(self):
    model = _attention_model()
    prompt, pmask = _prompts(8, 16, 48)
    n_before = rollout._generate_jit._cache_size()
    res = rollout.generate(model, prompt, pmask, max_new_tokens=12, rng=jax.random.key(0),
                           temperature=0.0, eos_id=999, pad_id=0)
    chex.assert_shape([res.tokens, res.logprobs, res.mask], (8, 12))
    assert np.asarray(res.mask).all() and not np.asarray(res.finished).any()
    _check_greedy_is_argmax(model, prompt, pmask, res)  # prompt lengths 1 .. 16 (full)
    # An EOS that row 0 emits at step 3: rows stop there and are padded after it.
    eos = int(res.tokens[0, 3])
    res_eos = rollout.generate(model, prompt[:, 3:], pmask[:, 3:], max_new_tokens=10,
                               rng=jax.random.key(0), temperature=0.0, eos_id=[eos, 998],
                               pad_id=7)
    # Same buckets (P 13 -> 16, N 10 -> 16): no new compilation for the second call.
    assert rollout._generate_jit._cache_size() == n_before + 1
    chex.assert_shape(res_eos.tokens, (8, 10))
    _check_eos_padding(res_eos, [eos, 998], 7)
    assert res_eos.lengths[0] <= 4 and bool(res_eos.finished[0])
    _check_greedy_is_argmax(model, prompt[:, 3:], pmask[:, 3:], res_eos)

  def test_logprobs_match_forward_and_samples_adjacent(self):
    model = _attention_model()
    prompt, pmask = _prompts(4, 5, 48, seed=1)
    res = rollout.generate(model, prompt, pmask, rng=jax.random.key(1), **_SAMPLED)
    chex.assert_shape([res.tokens, res.logprobs, res.mask], (8, 9))
    logits = _teacher_forced_logits(model, prompt, pmask, res)  # prompt b -> rows 2b, 2b+1
    ref = jax.nn.log_softmax(jnp.asarray(logits) / 0.7, axis=-1)
    ref = np.take_along_axis(np.asarray(ref), np.asarray(res.tokens)[..., None], -1)[..., 0]
    m = np.asarray(res.mask)
    np.testing.assert_allclose(np.asarray(res.logprobs)[m], ref[m], atol=1e-4)
    _check_eos_padding(res, [5], 0)
    again = rollout.generate(model, prompt, pmask, rng=jax.random.key(1), **_SAMPLED)
    other = rollout.generate(model, prompt, pmask, rng=jax.random.key(2), **_SAMPLED)
    np.testing.assert_array_equal(res.tokens, again.tokens)
    assert np.any(np.asarray(res.tokens) != np.asarray(other.tokens))
    assert np.any(np.asarray(res.tokens)[0::2] != np.asarray(res.tokens)[1::2])

  def test_sharded_over_data_axis_matches_unsharded(self):
    if jax.device_count() < 4:
      pytest.skip("needs 4 devices")
    model = _attention_model()
    prompt, pmask = _prompts(4, 5, 48, seed=1)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:4]), ("data",))
    res = rollout.generate(model, prompt, pmask, rng=jax.random.key(1), mesh=mesh, **_SAMPLED)
    ref = rollout.generate(model, prompt, pmask, rng=jax.random.key(1), **_SAMPLED)
    assert res.tokens.sharding.spec[0] == "data"
    np.testing.assert_array_equal(res.tokens, ref.tokens)
    np.testing.assert_allclose(res.logprobs, ref.logprobs, atol=1e-5)

  def test_top_k_top_p_logprobs_are_renormalised(self):
    model = _attention_model()
    prompt, pmask = _prompts(4, 6, 48, seed=2)
    res = rollout.generate(model, prompt, pmask, max_new_tokens=8, rng=jax.random.key(3),
                           temperature=1.3, top_k=5, top_p=0.7)
    logits = _teacher_forced_logits(model, prompt, pmask, res)
    ref = sampling_log_probs(jnp.asarray(logits.reshape(-1, 48)), temperature=1.3, top_k=5,
                             top_p=0.7)
    ref = np.take_along_axis(np.asarray(ref), np.asarray(res.tokens).reshape(-1, 1), -1)
    assert np.all(np.isfinite(ref))  # inside the top-k / top-p set
    np.testing.assert_allclose(np.asarray(res.logprobs).reshape(-1), ref[:, 0], atol=1e-4)

  def test_deltanet_greedy_rollout_core_in_user_jit(self):
    model = _tiny(["deltanet"])
    prompt, pmask = _prompts(4, 16, 48, seed=3)
    graphdef, state = nnx.split(model)
    # The pure core composed into the caller's own jitted program.
    core = jax.jit(functools.partial(rollout.rollout_core, graphdef, max_new_tokens=10,
                                     temperature=0.0, eos_ids=3))
    res = core(state, jnp.asarray(prompt), jnp.asarray(pmask), jax.random.key(0))
    chex.assert_shape(res.tokens, (4, 10))
    _check_eos_padding(res, [3], 0)
    _check_greedy_is_argmax(model, prompt, pmask, res)

  def test_hybrid_greedy(self):
    model = _tiny(["gated_deltanet", "attention"])
    prompt, pmask = _prompts(4, 16, 48, seed=4)
    res = rollout.generate(model, prompt, pmask, max_new_tokens=10, rng=jax.random.key(0),
                           temperature=0.0, num_samples=2)
    _check_greedy_is_argmax(model, prompt, pmask, res)
    np.testing.assert_array_equal(res.tokens[0::2], res.tokens[1::2])  # greedy samples agree


def test_hf_qwen2_greedy_matches_transformers(tmp_path):
  hf = pytest.importorskip("rljax.models.hf", reason="rljax.models.hf not available yet")
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  config = transformers.Qwen2Config(
      vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
      tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=0,
      initializer_range=0.3,  # a spiky random model: greedy far from ties
  )
  hf_model = transformers.Qwen2ForCausalLM(config).eval()
  hf_model.save_pretrained(tmp_path)
  model = hf.from_pretrained(str(tmp_path))
  prompt, pmask = _prompts(3, 7, 96, seed=6)
  prompt = np.where(pmask == 1, np.maximum(prompt, 3), 0)  # no EOS inside prompts
  with torch.no_grad():
    out = hf_model.generate(
        input_ids=torch.tensor(prompt, dtype=torch.long),
        attention_mask=torch.tensor(pmask, dtype=torch.long), do_sample=False,
        max_new_tokens=12, pad_token_id=0,
    )
  expected = out[:, prompt.shape[1]:].numpy()
  res = rollout.generate(model, prompt, pmask, max_new_tokens=12, rng=jax.random.key(0),
                         temperature=0.0)
  np.testing.assert_array_equal(np.asarray(res.tokens), expected)


if __name__ == "__main__":
  absltest.main()
