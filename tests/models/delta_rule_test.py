"""Tests for the delta rule forms: recurrent (reference), chunkwise WY/UT and one-token step."""

import functools

import chex
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from jax.test_util import check_grads

from rljax.models._delta_rule import (
    _unit_lower_inverse,
    delta_rule_chunkwise,
    delta_rule_recurrent,
    delta_rule_step,
)

_TOL = dict(rtol=1e-5, atol=1e-5)


def _inputs(seed, b=2, t=13, h=2, dk=4, dv=3, gated=True):
  """Random inputs made with numpy (no eager jax compilations): unit keys, beta in (0, 1)."""
  rng = np.random.default_rng(seed)
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  q = rng.normal(size=(b, t, h, dk))
  k = rng.normal(size=(b, t, h, dk))
  k = k / np.linalg.norm(k, axis=-1, keepdims=True)
  v = rng.normal(size=(b, t, h, dv))
  beta = 1.0 / (1.0 + np.exp(-rng.normal(size=(b, t, h))))
  g = -np.log1p(np.exp(rng.normal(size=(b, t, h)))) if gated else None
  s0 = 0.5 * rng.normal(size=(b, h, dk, dv))
  return f32(q), f32(k), f32(v), f32(beta), None if g is None else f32(g), f32(s0)


def _step_loop(q, k, v, beta, g, s):
  outs = []
  for t in range(q.shape[1]):
    o, s = delta_rule_step(
        q[:, t], k[:, t], v[:, t], beta[:, t], None if g is None else g[:, t], s
    )
    outs.append(o)
  return jnp.stack(outs, axis=1), s


class HandWorkedTest(chex.TestCase):
  """T = 2, Dk = Dv = 2, one row, one head; values worked out by hand.

  Step 1: k1 = [1, 0], v1 = [1, 2], beta1 = 1: u1 = v1, S1 = [[1, 2], [0, 0]], o1 = S1^T [1, 0].
  Step 2: k2 = [0.6, 0.8], v2 = [3, 4], beta2 = 0.5, q2 = [1, 1] after scaling.
    DeltaNet: S1^T k2 = [0.6, 1.2], u2 = [1.2, 1.4], S2 = [[1.72, 2.84], [0.96, 1.12]],
      o2 = [2.68, 3.96].
    Gated, g2 = log 0.5: S <- S1 / 2, S^T k2 = [0.3, 0.6], u2 = [1.35, 1.7],
      S2 = [[1.31, 2.02], [1.08, 1.36]], o2 = [2.39, 3.38].
  Queries are passed multiplied by sqrt(Dk) because the functions scale them by Dk^-1/2.
  """

  def _args(self, gated):
    r2 = np.sqrt(2.0)
    q = jnp.array([[1.0, 0.0], [1.0, 1.0]]).reshape(1, 2, 1, 2) * r2
    k = jnp.array([[1.0, 0.0], [0.6, 0.8]]).reshape(1, 2, 1, 2)
    v = jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    beta = jnp.array([1.0, 0.5]).reshape(1, 2, 1)
    g = jnp.array([0.0, np.log(0.5)]).reshape(1, 2, 1) if gated else None
    return q, k, v, beta, g

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
      (False, [[1.0, 2.0], [2.68, 3.96]], [[1.72, 2.84], [0.96, 1.12]]),
      (True, [[1.0, 2.0], [2.39, 3.38]], [[1.31, 2.02], [1.08, 1.36]]),
  )
  def test_all_forms(self, gated, want_o, want_s):
    q, k, v, beta, g = self._args(gated)
    want_o = np.array(want_o).reshape(1, 2, 1, 2)
    want_s = np.array(want_s).reshape(1, 1, 2, 2)
    forms = {
        "recurrent": delta_rule_recurrent,
        "chunk2": functools.partial(delta_rule_chunkwise, chunk_size=2),
    }
    for name, fn in forms.items():
      o, s = self.variant(fn)(q, k, v, beta, g)
      np.testing.assert_allclose(o, want_o, rtol=1e-6, atol=1e-6, err_msg=name)
      np.testing.assert_allclose(s, want_s, rtol=1e-6, atol=1e-6, err_msg=name)
    o, s = _step_loop(q, k, v, beta, g, jnp.zeros((1, 1, 2, 2)))
    np.testing.assert_allclose(o, want_o, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s, want_s, rtol=1e-6, atol=1e-6)


class ChunkwiseMatchesRecurrentTest(chex.TestCase):

  @chex.variants(with_jit=True)
  @parameterized.parameters((False, 16, False), (True, 13, True))  # (gated, T, initial state)
  def test_forward(self, gated, t, with_state):
    q, k, v, beta, g, s0 = _inputs(0, t=t, gated=gated)
    s0 = s0 if with_state else None
    o_ref, s_ref = jax.jit(delta_rule_recurrent)(q, k, v, beta, g, s0)
    o, s = self.variant(functools.partial(delta_rule_chunkwise, chunk_size=4))(
        q, k, v, beta, g, s0
    )
    np.testing.assert_allclose(o, o_ref, **_TOL)
    np.testing.assert_allclose(s, s_ref, **_TOL)

  @parameterized.parameters(False, True)
  def test_gradients(self, gated):
    # T = 13 with chunk 4: three full chunks plus a padded one; gradients for every input.
    # One very strong decay (g = -60): exp(G_i - G_j) above the diagonal would overflow, and
    # its gradient be NaN, if the exponent were masked after exp instead of before.
    q, k, v, beta, g, s0 = _inputs(1, t=13, gated=gated)
    g = None if g is None else g.at[:, 5].set(-60.0)
    wo = jax.random.normal(jax.random.PRNGKey(7), v.shape)
    ws = jax.random.normal(jax.random.PRNGKey(8), s0.shape)

    def loss(fn, q, k, v, beta, g, s0):
      o, s = fn(q, k, v, beta, g, s0)
      return jnp.sum(o * wo) + jnp.sum(s * ws)

    args = (q, k, v, beta, g, s0)
    argnums = (0, 1, 2, 3, 4, 5) if gated else (0, 1, 2, 3, 5)
    chunk = functools.partial(delta_rule_chunkwise, chunk_size=4)
    g_ref = jax.jit(jax.grad(functools.partial(loss, delta_rule_recurrent), argnums))(*args)
    g_chk = jax.jit(jax.grad(functools.partial(loss, chunk), argnums))(*args)
    for a, b in zip(g_chk, g_ref):
      self.assertTrue(np.all(np.isfinite(a)))
      np.testing.assert_allclose(a, b, **_TOL)


class SolverTest(chex.TestCase):

  @parameterized.parameters(10, 48)  # one block (10 is not a multiple of 16); three blocks
  def test_unit_lower_inverse(self, n):
    rng = np.random.default_rng(n)
    x = np.tril(0.2 * rng.normal(size=(2, n, n)), -1)
    # Row 1: identical keys with beta = 1 (A = I + strict_tril(ones)); A^{-1} = I - subdiagonal.
    x[1] = np.tril(np.ones((n, n)), -1)
    t = np.asarray(jax.jit(_unit_lower_inverse)(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(t[0], np.linalg.inv(x[0] + np.eye(n)), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(t[1], np.eye(n) - np.eye(n, k=-1))
    np.testing.assert_array_equal(np.triu(t, 1), 0.0)

  def test_unit_lower_inverse_grad(self):
    x = jnp.asarray(np.tril(np.random.default_rng(0).normal(size=(1, 5, 5)), -1), jnp.float32)
    check_grads(jax.jit(_unit_lower_inverse), (x,), order=1, modes=("rev",), eps=1e-2, atol=2e-2)

  def test_solve_triangular_solver_matches(self):
    q, k, v, beta, g, s0 = _inputs(9, t=9, gated=True)

    def loss(solver, q, k, v, beta, g, s0):
      o, s = delta_rule_chunkwise(q, k, v, beta, g, s0, chunk_size=4, solver=solver)
      return jnp.sum(jnp.sin(o)) + jnp.sum(s)

    args = (q, k, v, beta, g, s0)
    for solver in ("inverse", "solve_triangular"):
      val, grads = jax.jit(jax.value_and_grad(functools.partial(loss, solver), range(6)))(*args)
      if solver == "inverse":
        want_val, want_grads = val, grads
    np.testing.assert_allclose(val, want_val, **_TOL)
    chex.assert_trees_all_close(grads, want_grads, **_TOL)


class StepTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_step_loop_matches_recurrent(self):
    q, k, v, beta, g, s0 = _inputs(4, t=3, gated=True)
    step = self.variant(delta_rule_step)
    outs, s = [], s0
    for t in range(q.shape[1]):
      o, s = step(q[:, t], k[:, t], v[:, t], beta[:, t], g[:, t], s)
      outs.append(o)
    o_ref, s_ref = jax.jit(delta_rule_recurrent)(q, k, v, beta, g, s0)
    np.testing.assert_allclose(jnp.stack(outs, axis=1), o_ref, **_TOL)
    np.testing.assert_allclose(s, s_ref, **_TOL)

  def test_rejects_bad_state_shape(self):
    q, k, v, beta, g, s0 = _inputs(5, t=1, gated=True)
    with self.assertRaises(AssertionError):
      delta_rule_step(q[:, 0], k[:, 0], v[:, 0], beta[:, 0], g[:, 0], s0[..., :2])


class CausalityTest(chex.TestCase):

  def test_future_inputs_have_zero_gradient(self):
    gated = True  # the ungated path is the same code with Gamma = 1
    q, k, v, beta, g, _ = _inputs(6, b=1, t=7, h=1, dk=3, dv=2, gated=gated)
    chunk = functools.partial(delta_rule_chunkwise, chunk_size=3)
    args = (q, k, v, beta) + ((g,) if gated else ())

    def out(*a):
      return chunk(*a[:4], a[4] if gated else None)[0]

    jac = jax.jit(jax.jacrev(out, argnums=tuple(range(len(args)))))(*args)
    for j in jac:  # [1, T, 1, Dv, 1, T, ...] -> output time axis 1, input time axis 5
      j = np.asarray(j).reshape(7, 2, 7, -1)
      for t in range(7):
        np.testing.assert_array_equal(j[t, :, t + 1 :], 0.0)
      self.assertTrue(np.any(j != 0.0))


_recurrent_jit = jax.jit(delta_rule_recurrent)
_chunkwise_jit = jax.jit(delta_rule_chunkwise, static_argnames="chunk_size")


@hypothesis.settings(max_examples=5, deadline=None)
@hypothesis.given(
    t=st.sampled_from([5, 9]),
    chunk=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    gated=st.booleans(),
)
def test_chunk_size_invariance_and_zero_beta_noop(t, chunk, seed, gated):
  q, k, v, beta, g, s0 = _inputs(seed, b=1, t=t, h=1, dk=3, dv=2, gated=gated)
  o_ref, s_ref = _recurrent_jit(q, k, v, beta, g, s0)
  o, s = _chunkwise_jit(q, k, v, beta, g, s0, chunk_size=chunk)
  np.testing.assert_allclose(o, o_ref, **_TOL)
  np.testing.assert_allclose(s, s_ref, **_TOL)
  # beta = 0 and g = 0 everywhere: the state never changes and o_t = S0^T q_t / sqrt(Dk).
  zeros = jnp.zeros_like(beta)
  o0, s_fin = _chunkwise_jit(q, k, v, zeros, zeros if gated else None, s0, chunk_size=chunk)
  np.testing.assert_allclose(s_fin, s0, rtol=0, atol=0)
  want = np.einsum("bthk,bhkv->bthv", q, s0) / np.sqrt(3.0)
  np.testing.assert_allclose(o0, want, **_TOL)
