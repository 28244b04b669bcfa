r"""The (gated) delta rule: recurrent reference, chunkwise-parallel form and a one-token step.

State ``S`` is ``[Dk, Dv]`` per (row, head). One step with key ``k``, value ``v``, query ``q``,
write strength ``beta`` and log-decay ``g <= 0`` (Gated DeltaNet; ``g = 0`` is DeltaNet):

  S <- exp(g) S
  u = beta (v - S^T k)
  S <- S + k u^T
  o = S^T (scale q)

``scale`` is applied INSIDE these functions (default ``Dk^-1/2``, as in the DeltaNet / fla
kernels), so the layers pass un-scaled (L2-normalised) queries.

The chunkwise form (Yang et al., 2024, WY/UT representation) splits the sequence into chunks of
``C`` tokens. With ``G = cumsum(g)`` inside a chunk, ``Gamma_ij = exp(G_i - G_j)`` for ``i >= j``
(0 above the diagonal; the EXPONENT is masked before ``exp`` so nothing overflows), and the
state ``S`` at the start of the chunk:

  A = I + strict_tril(diag(beta) (Gamma * K K^T))          (unit lower triangular)
  [U_hat, W] = A^{-1} [diag(beta) V, diag(beta exp(G)) K]  (one triangular solve / inverse)
  U = U_hat - W S                                         (the chunk's pseudo-values)
  O = diag(exp(G)) Q S + tril(Gamma * Q K^T) U             (tril includes the diagonal)
  S <- exp(G_C) S + (diag(exp(G_C - G)) K)^T U

All the per-chunk work (Gram matrices, the solve) runs for every chunk at once; only the
``[Dk, Dv]`` state is carried through a ``lax.scan`` over the ``T / C`` chunks.

All math is fp32; outputs are cast to ``v.dtype``, states stay fp32.

Papers: DeltaNet, "Parallelizing Linear Transformers with the Delta Rule over Sequence Length"
(arXiv 2406.06484); Gated DeltaNet, "Gated Delta Networks: Improving Mamba2 with Delta Rule"
(arXiv 2412.06464).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp

# Full fp32 matmuls (TF32 / bf16 passes would break the 1e-5 agreement between the forms).
_PRECISION = jax.lax.Precision.HIGHEST
# Masked exponents of the decay matrix: exp of it is exactly 0, and so is its gradient.
_MASKED_EXPONENT = -1e30


def _forward_substitution(x: jax.Array) -> jax.Array:
  """``(I + x)^{-1}`` for strictly lower-triangular ``x`` ``[..., n, n]``, row by row."""
  n = x.shape[-1]
  eye = jnp.broadcast_to(jnp.eye(n, dtype=x.dtype), x.shape)

  def body(i, t):
    x_i = jax.lax.dynamic_index_in_dim(x, i, axis=-2, keepdims=True)  # [..., 1, n]
    e_i = jax.lax.dynamic_index_in_dim(eye, i, axis=-2, keepdims=True)
    row = e_i - jnp.matmul(x_i, t, precision=_PRECISION)  # rows >= i of t are still 0
    return jax.lax.dynamic_update_index_in_dim(t, row, i, axis=-2)

  return jax.lax.fori_loop(0, n, body, jnp.zeros_like(x))


def _unit_lower_inverse_impl(x: jax.Array, block: int) -> jax.Array:
  """``(I + x)^{-1}``: forward substitution on ``block``-sized diagonal blocks, merged by matmuls.

  Off-diagonal blocks: ``T_ij = -T_ii sum_{j <= m < i} X_im T_mj`` (block forward substitution).
  """
  n = x.shape[-1]
  if n % block:
    block = n
  nb = n // block
  sl = lambda i: slice(i * block, (i + 1) * block)
  diag = jnp.stack([x[..., sl(i), sl(i)] for i in range(nb)], axis=-3)  # [..., nb, blk, blk]
  diag = _forward_substitution(diag)
  t = [[None] * nb for _ in range(nb)]
  for i in range(nb):
    t[i][i] = diag[..., i, :, :]
    for j in range(i - 1, -1, -1):
      acc = sum(
          jnp.matmul(x[..., sl(i), sl(m)], t[m][j], precision=_PRECISION) for m in range(j, i)
      )
      t[i][j] = -jnp.matmul(t[i][i], acc, precision=_PRECISION)
  zero = jnp.zeros((*x.shape[:-2], block, block), x.dtype)
  rows = [jnp.concatenate([t[i][j] if j <= i else zero for j in range(nb)], -1) for i in range(nb)]
  return jnp.concatenate(rows, axis=-2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _unit_lower_inverse(x: jax.Array, block: int = 16) -> jax.Array:
  """``T = (I + x)^{-1}`` for strictly lower-triangular ``x``; backward ``-T^T dT T^T`` (tril)."""
  return _unit_lower_inverse_impl(x, block)


def _unit_lower_inverse_fwd(x, block):
  t = _unit_lower_inverse_impl(x, block)
  return t, t


def _unit_lower_inverse_bwd(block, t, dt):
  del block
  tt = jnp.swapaxes(t, -1, -2)
  dx = -jnp.matmul(jnp.matmul(tt, dt, precision=_PRECISION), tt, precision=_PRECISION)
  n = t.shape[-1]
  strict = jnp.tril(jnp.ones((n, n), jnp.bool_), -1).reshape((1,) * (t.ndim - 2) + (n, n))
  return (jnp.where(strict, dx, 0.0),)


_unit_lower_inverse.defvjp(_unit_lower_inverse_fwd, _unit_lower_inverse_bwd)


def _check(q, k, v, beta, g, state, *, time_axis: bool) -> None:
  """Shared rank / shape / dtype checks (``time_axis``: inputs carry a T axis)."""
  r = 4 if time_axis else 3
  chex.assert_rank([q, k, v, beta], [r, r, r, r - 1])
  chex.assert_equal_shape([q, k])
  chex.assert_equal_shape_prefix([q, v, beta], r - 1)
  chex.assert_type([q, k, v, beta], [float, float, float, float])
  if g is not None:
    chex.assert_equal_shape([beta, g])
    chex.assert_type(g, float)
  if state is not None:
    batch, heads, dk, dv = q.shape[0], q.shape[-2], q.shape[-1], v.shape[-1]
    chex.assert_shape(state, (batch, heads, dk, dv))
    chex.assert_type(state, float)


def _scale(q: jax.Array, scale: float | None) -> float:
  return q.shape[-1] ** -0.5 if scale is None else float(scale)


def delta_rule_step(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    beta: jax.Array,
    g: jax.Array | None,
    state: jax.Array,
    *,
    scale: float | None = None,
) -> tuple[jax.Array, jax.Array]:
  r"""One token of the (gated) delta rule, for decoding with a carried state.

  S' = exp(g) S + k (beta (v - (exp(g) S)^T k))^T,   o = S'^T (scale q).

  Args:
    q: ``[B, H, Dk]`` query (not yet scaled).
    k: ``[B, H, Dk]`` key (L2-normalised by the layer).
    v: ``[B, H, Dv]`` value.
    beta: ``[B, H]`` write strength in [0, 1]; 0 makes the step a no-op on the state.
    g: ``[B, H]`` log-decay (<= 0), or None for the ungated delta rule.
    state: ``[B, H, Dk, Dv]`` state before this token.
    scale: query scale; None means ``Dk ** -0.5``.

  Returns:
    ``(o, new_state)``: ``o`` ``[B, H, Dv]`` in ``v.dtype``, ``new_state`` ``[B, H, Dk, Dv]`` fp32.
  """
  _check(q, k, v, beta, g, state, time_axis=False)
  f32 = jnp.float32
  q32 = q.astype(f32) * _scale(q, scale)
  k32, v32, b32 = k.astype(f32), v.astype(f32), beta.astype(f32)
  s = state.astype(f32)
  if g is not None:
    s = s * jnp.exp(g.astype(f32))[..., None, None]
  ks = jnp.einsum("bhk,bhkv->bhv", k32, s, precision=_PRECISION)  # [B, H, Dv]
  u = b32[..., None] * (v32 - ks)  # [B, H, Dv]
  s = s + k32[..., :, None] * u[..., None, :]  # [B, H, Dk, Dv]
  o = jnp.einsum("bhk,bhkv->bhv", q32, s, precision=_PRECISION)
  return o.astype(v.dtype), s


def delta_rule_recurrent(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    beta: jax.Array,
    g: jax.Array | None = None,
    initial_state: jax.Array | None = None,
    *,
    scale: float | None = None,
) -> tuple[jax.Array, jax.Array]:
  r"""The (gated) delta rule token by token with ``lax.scan`` (the reference form).

  For t = 1..T: S <- exp(g_t) S; S <- S + k_t (beta_t (v_t - S^T k_t))^T; o_t = S^T (scale q_t).

  Args:
    q: ``[B, T, H, Dk]`` queries (not yet scaled).
    k: ``[B, T, H, Dk]`` keys (L2-normalised by the layer).
    v: ``[B, T, H, Dv]`` values.
    beta: ``[B, T, H]`` write strengths in [0, 1].
    g: ``[B, T, H]`` log-decays (<= 0), or None for DeltaNet.
    initial_state: ``[B, H, Dk, Dv]`` or None (zeros).
    scale: query scale; None means ``Dk ** -0.5``.

  Returns:
    ``(o, final_state)``: ``o`` ``[B, T, H, Dv]`` in ``v.dtype``; ``final_state``
    ``[B, H, Dk, Dv]`` fp32.
  """
  _check(q, k, v, beta, g, initial_state, time_axis=True)
  batch, _, heads, dk = q.shape
  dv = v.shape[-1]
  s0 = (
      jnp.zeros((batch, heads, dk, dv), jnp.float32)
      if initial_state is None
      else initial_state.astype(jnp.float32)
  )
  scale = _scale(q, scale)
  swap = lambda x: jnp.swapaxes(x, 0, 1)  # [B, T, ...] <-> [T, B, ...]
  xs = (swap(q), swap(k), swap(v), swap(beta), None if g is None else swap(g))

  def body(s, x):
    q_t, k_t, v_t, b_t, g_t = x
    o_t, s = delta_rule_step(q_t, k_t, v_t, b_t, g_t, s, scale=scale)
    return s, o_t

  s_final, o = jax.lax.scan(body, s0, xs)
  return swap(o), s_final


def delta_rule_chunkwise(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    beta: jax.Array,
    g: jax.Array | None = None,
    initial_state: jax.Array | None = None,
    *,
    chunk_size: int = 64,
    scale: float | None = None,
    solver: str = "inverse",
) -> tuple[jax.Array, jax.Array]:
  r"""The (gated) delta rule in chunkwise-parallel WY/UT form; equals :func:`delta_rule_recurrent`.

  Per chunk (see the module docstring): ``A = I + strict_tril(diag(beta)(Gamma * K K^T))``,
  ``[U_hat, W] = A^{-1}[diag(beta) V, diag(beta e^G) K]`` (see ``solver``),
  ``U = U_hat - W S``, ``O = diag(e^G) Q S + tril(Gamma * Q K^T) U``,
  ``S <- e^{G_C} S + (diag(e^{G_C - G}) K)^T U``.
  ``T`` that is not a multiple of the chunk is padded at the end with ``beta = 0, g = 0``
  steps, which leave the state unchanged. The chunk is ``min(chunk_size, T)``.

  Args:
    q: ``[B, T, H, Dk]`` queries (not yet scaled).
    k: ``[B, T, H, Dk]`` keys (L2-normalised by the layer).
    v: ``[B, T, H, Dv]`` values.
    beta: ``[B, T, H]`` write strengths in [0, 1].
    g: ``[B, T, H]`` log-decays (<= 0), or None for DeltaNet.
    initial_state: ``[B, H, Dk, Dv]`` or None (zeros).
    chunk_size: C, tokens per chunk (64 in the papers).
    scale: query scale; None means ``Dk ** -0.5``.
    solver: how ``A^{-1} [...]`` is computed. "inverse" (default): ``T = A^{-1}`` by forward
      substitution on 16 x 16 diagonal blocks merged with matmuls (what the fla kernels do), a
      custom VJP ``dX = -T^T dT T^T``, then one matmul. "solve_triangular":
      ``jax.scipy.linalg.solve_triangular`` (exact same math; XLA:CPU runs its batched small
      solves about 100x slower than the matmuls, see benchmarks/delta_rule.py).

  Returns:
    ``(o, final_state)``: ``o`` ``[B, T, H, Dv]`` in ``v.dtype``; ``final_state``
    ``[B, H, Dk, Dv]`` fp32.
  """
  _check(q, k, v, beta, g, initial_state, time_axis=True)
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
  if solver not in ("inverse", "solve_triangular"):
    raise ValueError(f"solver must be 'inverse' or 'solve_triangular', got {solver!r}")
  batch, t_len, heads, dk = q.shape
  dv = v.shape[-1]
  f32 = jnp.float32
  c = min(chunk_size, t_len)
  n = -(-t_len // c)
  pad = n * c - t_len

  q32 = q.astype(f32) * _scale(q, scale)
  k32, v32, b32 = k.astype(f32), v.astype(f32), beta.astype(f32)
  g32 = None if g is None else g.astype(f32)
  if pad:
    pad_t = lambda x: jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
    q32, k32, v32, b32 = pad_t(q32), pad_t(k32), pad_t(v32), pad_t(b32)
    g32 = None if g32 is None else pad_t(g32)

  def to_chunks(x):  # [B, N*C, H, ...] -> [N, B, H, C, ...]
    x = x.reshape((batch, n, c, heads, *x.shape[3:]))
    return jnp.moveaxis(x, (1, 3), (0, 2))

  qc, kc, vc = to_chunks(q32), to_chunks(k32), to_chunks(v32)  # [N, B, H, C, D]
  bc = to_chunks(b32)  # [N, B, H, C]

  idx = jnp.arange(c)
  # [1, 1, 1, C, C] masks (explicit ranks: the repo raises on implicit rank promotion)
  lower = (idx[:, None] >= idx[None, :]).reshape(1, 1, 1, c, c)  # tril incl. the diagonal
  strict = (idx[:, None] > idx[None, :]).reshape(1, 1, 1, c, c)
  kk = jnp.einsum("nbhid,nbhjd->nbhij", kc, kc, precision=_PRECISION)  # [N, B, H, C, C]
  qk = jnp.einsum("nbhid,nbhjd->nbhij", qc, kc, precision=_PRECISION)
  rhs_k = kc * bc[..., None]  # diag(beta) K
  if g32 is not None:
    cum = jnp.cumsum(to_chunks(g32), axis=-1)  # G, [N, B, H, C]
    diff = cum[..., :, None] - cum[..., None, :]  # G_i - G_j
    gamma = jnp.exp(jnp.where(lower, diff, _MASKED_EXPONENT))  # mask the exponent, then exp
    kk = kk * gamma
    qk = qk * gamma
    decay_q = jnp.exp(cum)[..., None]  # [N, B, H, C, 1]
    rhs_k = rhs_k * decay_q
    decay_k = jnp.exp(cum[..., -1:] - cum)[..., None]  # exp(G_C - G_j), [N, B, H, C, 1]
    decay_s = jnp.exp(cum[..., -1])[..., None, None]  # exp(G_C), [N, B, H, 1, 1]
    q_in, k_out = qc * decay_q, kc * decay_k
  else:
    decay_s = None
    q_in, k_out = qc, kc

  x = jnp.where(strict, bc[..., :, None] * kk, 0.0)  # A = I + x, x strictly lower
  rhs = jnp.concatenate([vc * bc[..., None], rhs_k], axis=-1)  # [N, B, H, C, Dv + Dk]
  if solver == "solve_triangular":
    a = x + jnp.eye(c, dtype=f32).reshape(1, 1, 1, c, c)
    sol = jax.scipy.linalg.solve_triangular(a, rhs, lower=True, unit_diagonal=True)
  else:  # "inverse": T = A^{-1} by blocked forward substitution, then one matmul
    sol = jnp.matmul(_unit_lower_inverse(x), rhs, precision=_PRECISION)
  u_hat, w = sol[..., :dv], sol[..., dv:]  # [N, B, H, C, Dv], [N, B, H, C, Dk]
  p = jnp.where(lower, qk, 0.0)  # [N, B, H, C, C]

  s0 = (
      jnp.zeros((batch, heads, dk, dv), f32)
      if initial_state is None
      else initial_state.astype(f32)
  )

  def body(s, x):
    u_hat_n, w_n, q_n, k_n, p_n, ds_n = x
    u = u_hat_n - jnp.einsum("bhck,bhkv->bhcv", w_n, s, precision=_PRECISION)
    o = jnp.einsum("bhck,bhkv->bhcv", q_n, s, precision=_PRECISION) + jnp.einsum(
        "bhij,bhjv->bhiv", p_n, u, precision=_PRECISION
    )
    if ds_n is not None:
      s = s * ds_n
    s = s + jnp.einsum("bhck,bhcv->bhkv", k_n, u, precision=_PRECISION)
    return s, o

  s_final, o = jax.lax.scan(body, s0, (u_hat, w, q_in, k_out, p, decay_s))
  o = jnp.moveaxis(o, (0, 2), (1, 3)).reshape(batch, n * c, heads, dv)[:, :t_len]
  return o.astype(v.dtype), s_final
