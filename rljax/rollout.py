"""Rollout engine: jitted batched sampling from an rljax Transformer (prefill, then a decode loop).

One compiled program per static configuration: the (bucketed) prompts are prefilled into the
model's cache (attention KV buffers, delta-rule recurrent states, or a mix), the first token is
sampled from the last prompt position, and a ``lax.while_loop`` decodes one token per step until
every row has emitted an EOS token or ``max_new_tokens`` tokens were generated.

Sampling draws ONE uniform per row and inverts the CDF of the (filtered) softmax, instead of the
Gumbel-max trick of ``jax.random.categorical`` (one Gumbel per vocabulary entry, which dominates
a CPU decode step at a 32k vocabulary). The CDF is searched in two levels (block sums, then one
block) so the cost is O(V) with no full-vocabulary cumulative sum.

Public API:
  * :func:`generate`: the user-facing entry point (jits and caches the program, buckets shapes).
  * :func:`rollout_core`: the pure, un-jitted program on ``(graphdef, state)``, to compose into a
    trainer's own jitted step.
  * :func:`sample_logits`: one sampling step ``[B, V] -> tokens [B], logprobs [B]``.
  * :func:`sampling_log_probs`: the full ``[B, V]`` log-probs of the sampling distribution (a
    plain sort-based reference of what :func:`sample_logits` samples from).
  * :func:`bucket_length`: the length bucketing rule.
  * :class:`RolloutResult`: the result pytree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = [
    "RolloutResult",
    "bucket_length",
    "generate",
    "rollout_core",
    "sample_logits",
    "sampling_log_probs",
]


# ------------------------------------------------------------------------------------------------
# Sampling.


def _check_filters(top_k: int | None, top_p: float | None, vocab_size: int | None = None) -> None:
  if top_k is not None:
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
      raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    if vocab_size is not None and top_k > vocab_size:
      raise ValueError(f"top_k must be <= the vocabulary size {vocab_size}, got {top_k}")
  if top_p is not None and not isinstance(top_p, jax.Array) and not 0.0 < top_p <= 1.0:
    raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")


def _block_size(n: int) -> int:
  """Block width of the two-level CDF search: about sqrt(n), a power of two in [8, 1024]."""
  return int(min(1024, max(8, 2 ** math.ceil(math.log2(max(1.0, math.sqrt(n)))))))


def _last_true(x_BN: jax.Array) -> jax.Array:
  """Index of the last True entry along the last axis (0 when none)."""
  n = x_BN.shape[-1]
  return (n - 1 - jnp.argmax(jnp.flip(x_BN, axis=-1), axis=-1)).astype(jnp.int32)


def _inverse_cdf_index(w_BV: jax.Array, u_B: jax.Array) -> jax.Array:
  r"""Samples ``i ~ w_i / sum_j w_j`` per row from one uniform ``u`` per row (inverse CDF).

  i = min{i : sum_{j <= i} w_j > u * sum_j w_j}, searched in two levels: blocks of ~sqrt(V)
  entries (cumulative block sums), then the cumulative sum inside the chosen block. Zero-weight
  entries are never returned (the result is clamped to the non-zero entries of the chosen block,
  which only matters at fp32 rounding of the boundary).

  Args:
    w_BV: ``[B, V]`` non-negative fp32 weights, at least one positive per row.
    u_B: ``[B]`` uniforms in [0, 1).

  Returns:
    ``[B]`` int32 indices in [0, V).
  """
  b, v = w_BV.shape
  c = _block_size(v)
  nb = -(-v // c)
  if nb * c != v:
    w_BV = jnp.pad(w_BV, ((0, 0), (0, nb * c - v)))
  w_BNC = w_BV.reshape(b, nb, c)
  bsum_BN = jnp.sum(w_BNC, axis=-1)
  bcdf_BN = jnp.cumsum(bsum_BN, axis=-1)
  x_B = u_B * bcdf_BN[:, -1]
  nz_block_BN = bsum_BN > 0
  blk_B = jnp.sum(bcdf_BN <= x_B[:, None], axis=-1, dtype=jnp.int32)
  blk_B = jnp.minimum(blk_B, _last_true(nz_block_BN))
  w_BC = jnp.take_along_axis(w_BNC, blk_B[:, None, None], axis=1)[:, 0]
  excl_B = jnp.take_along_axis(bcdf_BN - bsum_BN, blk_B[:, None], axis=1)[:, 0]
  r_B = x_B - excl_B
  ccdf_BC = jnp.cumsum(w_BC, axis=-1)
  nz_BC = w_BC > 0
  j_B = jnp.sum(ccdf_BC <= r_B[:, None], axis=-1, dtype=jnp.int32)
  j_B = jnp.clip(j_B, jnp.argmax(nz_BC, axis=-1).astype(jnp.int32), _last_true(nz_BC))
  return blk_B * c + j_B


def _blocked_cumsum(x_BV: jax.Array) -> jax.Array:
  """Inclusive cumulative sum over the last axis in two levels (O(V) work on CPU)."""
  b, v = x_BV.shape
  c = _block_size(v)
  nb = -(-v // c)
  xp_BV = jnp.pad(x_BV, ((0, 0), (0, nb * c - v))) if nb * c != v else x_BV
  x_BNC = xp_BV.reshape(b, nb, c)
  inner_BNC = jnp.cumsum(x_BNC, axis=-1)
  bcdf_BN = jnp.cumsum(inner_BNC[:, :, -1], axis=-1)
  out_BNC = inner_BNC + (bcdf_BN - inner_BNC[:, :, -1])[:, :, None]
  return out_BNC.reshape(b, nb * c)[:, :v]


def sample_logits(
    logits_BV: jax.Array,
    rng: jax.Array,
    *,
    temperature: float | jax.Array = 1.0,
    top_k: int | None = None,
    top_p: float | jax.Array | None = None,
    greedy: bool | None = None,
    uniform_B: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  r"""Samples one token per row with one uniform per row; returns the tokens and their log-probs.

  Sampling distribution (the one ``logprobs`` refer to), in fp32:
    z = logits / temperature;
    top-k: keep the k largest z (``lax.top_k``; ties broken towards the lower index);
    top-p (nucleus, Holtzman et al. 2020, applied after top-k): sort the kept z descending,
    keep the smallest prefix whose probability mass is >= top_p (the most probable token is
    always kept);
    pi(i) = exp(z_i) / sum_{j kept} exp(z_j) for kept i, 0 otherwise.
  The token is i = min{i : CDF(i) > u}, u ~ U[0, 1), one uniform per row (exact inverse-CDF
  sampling up to fp32 rounding and the 2^-24 resolution of ``u``), and
  ``logprob = log pi(token)``: after temperature AND after the top-k/top-p renormalisation.

  Greedy (``greedy=True``, or ``temperature == 0`` given as a Python number): ``argmax(logits)``
  and, since the greedy point mass would give log-prob 0, the log-prob returned is the model's
  own ``log_softmax(logits)[token]`` at temperature 1, unfiltered.

  Args:
    logits_BV: ``[B, V]`` logits (any float dtype; computed in fp32).
    rng: a PRNG key (unused when ``uniform_B`` is given, or greedy).
    temperature: > 0 scalar (Python or traced), or 0 (Python) for greedy.
    top_k: static int or None.
    top_p: float in (0, 1] (Python or traced) or None.
    greedy: force greedy (True) or sampling (False); None infers it from ``temperature == 0``.
    uniform_B: optional ``[B]`` uniforms in [0, 1) to use instead of drawing them from ``rng``.

  Returns:
    ``(tokens [B] int32, logprobs [B] fp32)``.
  """
  chex.assert_rank(logits_BV, 2)
  b, v = logits_BV.shape
  _check_filters(top_k, top_p, v)
  if top_p is not None and not isinstance(top_p, jax.Array) and top_p >= 1.0:
    top_p = None  # the nucleus of mass 1 is everything
  if greedy is None:
    if isinstance(temperature, jax.Array):
      raise ValueError("temperature is traced: pass greedy=True/False explicitly")
    if temperature < 0:
      raise ValueError(f"temperature must be >= 0, got {temperature}")
    greedy = temperature == 0
  logits_BV = logits_BV.astype(jnp.float32)
  if greedy:
    tok_B = jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
    lse_B = jax.nn.logsumexp(logits_BV, axis=-1)
    sel_B = jnp.take_along_axis(logits_BV, tok_B[:, None], axis=1)[:, 0]
    return tok_B, sel_B - lse_B
  temperature = jnp.asarray(temperature, jnp.float32)
  z_BV = logits_BV / temperature
  if uniform_B is None:
    uniform_B = jax.random.uniform(rng, (b,), jnp.float32)
  chex.assert_shape(uniform_B, (b,))
  u_B = uniform_B.astype(jnp.float32)
  if top_k is None and top_p is None:
    w_BV = jnp.exp(z_BV - jnp.max(z_BV, axis=-1, keepdims=True))
    tok_B = _inverse_cdf_index(w_BV, u_B)
    w_sel_B = jnp.take_along_axis(w_BV, tok_B[:, None], axis=1)[:, 0]
    return tok_B, jnp.log(w_sel_B) - jnp.log(jnp.sum(w_BV, axis=-1))
  if top_k is not None:
    # The k largest z, sorted (reduce with max, not a slice: slicing a top_k output makes XLA
    # CPU fall back to a full sort).
    zs_BK, idx_BK = jax.lax.top_k(z_BV, top_k)
    ws_BK = jnp.exp(zs_BK - jnp.max(zs_BK, axis=-1, keepdims=True))
    if top_p is not None:
      ps_BK = ws_BK / jnp.sum(ws_BK, axis=-1, keepdims=True)
      excl_BK = _blocked_cumsum(ps_BK) - ps_BK
      keep_BK = (excl_BK < jnp.asarray(top_p, jnp.float32)) | (jnp.arange(top_k) == 0)[None, :]
      ws_BK = jnp.where(keep_BK, ws_BK, 0.0)
    pos_B = _inverse_cdf_index(ws_BK, u_B)
    tok_B = jnp.take_along_axis(idx_BK, pos_B[:, None], axis=1)[:, 0].astype(jnp.int32)
    w_sel_B = jnp.take_along_axis(ws_BK, pos_B[:, None], axis=1)[:, 0]
    return tok_B, jnp.log(w_sel_B) - jnp.log(jnp.sum(ws_BK, axis=-1))
  w_BV = _nucleus(jnp.exp(z_BV - jnp.max(z_BV, axis=-1, keepdims=True)), top_p)
  tok_B = _inverse_cdf_index(w_BV, u_B)
  w_sel_B = jnp.take_along_axis(w_BV, tok_B[:, None], axis=1)[:, 0]
  return tok_B, jnp.log(w_sel_B) - jnp.log(jnp.sum(w_BV, axis=-1))


def _nucleus(w_BV: jax.Array, top_p: float | jax.Array) -> jax.Array:
  r"""Zeroes the weights outside the top-p nucleus, without sorting the vocabulary.

  The nucleus is the smallest prefix of the entries sorted by decreasing weight (ties by
  increasing index) whose mass is >= top_p * Z, Z = sum_i w_i. Its smallest weight is
  t = max{s : sum_{w_i >= s} w_i >= top_p * Z}, found by bisection on the bits of the fp32
  value (w >= 0, so its int32 bit pattern is monotone in the value): 31 masked sums over V
  instead of an O(V log V) sort. Entries with w > t are kept; the j-th tie (0-based, by index)
  with w = t is kept iff sum_{w_i > t} w_i + j t < top_p * Z.

  Args:
    w_BV: ``[B, V]`` non-negative fp32 weights.
    top_p: mass in (0, 1].

  Returns:
    ``[B, V]`` the weights with the entries outside the nucleus set to 0.
  """
  key_BV = jax.lax.bitcast_convert_type(w_BV, jnp.int32)
  target_B1 = jnp.asarray(top_p, jnp.float32) * jnp.sum(w_BV, axis=-1, keepdims=True)

  def bit_step(i, t_B1):
    cand_B1 = t_B1 | jnp.left_shift(jnp.int32(1), 30 - i)
    mass_B1 = jnp.sum(jnp.where(key_BV >= cand_B1, w_BV, 0.0), axis=-1, keepdims=True)
    return jnp.where(mass_B1 >= target_B1, cand_B1, t_B1)

  t_B1 = jax.lax.fori_loop(0, 31, bit_step, jnp.zeros_like(target_B1, jnp.int32))
  above_BV = key_BV > t_B1
  tie_BV = key_BV == t_B1
  mass_above_B1 = jnp.sum(jnp.where(above_BV, w_BV, 0.0), axis=-1, keepdims=True)
  t_val_B1 = jax.lax.bitcast_convert_type(t_B1, jnp.float32)
  tie_rank_BV = _blocked_cumsum(tie_BV.astype(jnp.float32)) - 1.0
  keep_tie_BV = tie_BV & (mass_above_B1 + tie_rank_BV * t_val_B1 < target_B1)
  return jnp.where(above_BV | keep_tie_BV, w_BV, 0.0)


def sampling_log_probs(
    logits_BV: jax.Array,
    *,
    temperature: float | jax.Array = 1.0,
    top_k: int | None = None,
    top_p: float | jax.Array | None = None,
) -> jax.Array:
  r"""Log-probs ``log pi [B, V]`` of the distribution :func:`sample_logits` samples from.

  A plain reference (full argsort, ``jnp.cumsum``): z = logits / temperature; top-k keeps the k
  largest z; top-p then keeps the smallest descending prefix with mass >= top_p; the kept
  entries are renormalised, the others get -inf. See :func:`sample_logits`.

  Args:
    logits_BV: ``[B, V]`` logits.
    temperature: > 0.
    top_k: int or None.
    top_p: float in (0, 1] or None.

  Returns:
    ``[B, V]`` fp32 log-probs, -inf outside the kept set.
  """
  chex.assert_rank(logits_BV, 2)
  _check_filters(top_k, top_p, logits_BV.shape[-1])
  if top_p is not None and not isinstance(top_p, jax.Array) and top_p >= 1.0:
    top_p = None
  z_BV = logits_BV.astype(jnp.float32) / jnp.asarray(temperature, jnp.float32)
  order_BV = jnp.argsort(-z_BV, axis=-1, stable=True)
  zs_BV = jnp.take_along_axis(z_BV, order_BV, axis=-1)
  rank_keep_BV = jnp.ones_like(zs_BV, dtype=bool)
  if top_k is not None:
    rank_keep_BV = jnp.arange(zs_BV.shape[-1])[None, :] < top_k
  if top_p is not None:
    zk_BV = jnp.where(rank_keep_BV, zs_BV, -jnp.inf)
    ps_BV = jax.nn.softmax(zk_BV, axis=-1)
    excl_BV = jnp.cumsum(ps_BV, axis=-1) - ps_BV
    rank_keep_BV = rank_keep_BV & (excl_BV < top_p)
    rank_keep_BV = rank_keep_BV.at[:, 0].set(True)
  zk_BV = jnp.where(rank_keep_BV, zs_BV, -jnp.inf)
  logp_sorted_BV = jax.nn.log_softmax(zk_BV, axis=-1)
  inv_BV = jnp.argsort(order_BV, axis=-1)
  return jnp.take_along_axis(logp_sorted_BV, inv_BV, axis=-1)


# ------------------------------------------------------------------------------------------------
# Rollouts.


@struct.dataclass
class RolloutResult:
  """Sampled completions (a pytree). Rows are ``B * num_samples``, the samples of a prompt adjacent.

  Attributes:
    tokens: ``[R, N]`` int32 sampled tokens, ``pad_id`` after the first EOS.
    logprobs: ``[R, N]`` fp32 log-prob of each token under the sampling distribution (after
      temperature and the top-k/top-p renormalisation, see :func:`sample_logits`; the model's
      temperature-1 log-prob when greedy); 0 where ``mask`` is False.
    mask: ``[R, N]`` bool, True up to and including the first EOS.
    lengths: ``[R]`` int32, ``sum(mask, -1)``.
    finished: ``[R]`` bool, True where the row emitted an EOS (False: truncated at N).
  """

  tokens: jax.Array
  logprobs: jax.Array
  mask: jax.Array
  lengths: jax.Array
  finished: jax.Array


def bucket_length(n: int, *, minimum: int = 16, multiple: int = 64) -> int:
  """Static length bucket: the next power of two >= max(n, minimum) up to ``multiple``, beyond it
  the next multiple of ``multiple`` (1 -> 16, 17 -> 32, 64 -> 64, 65 -> 128, 130 -> 192)."""
  if n < 1:
    raise ValueError(f"length must be >= 1, got {n}")
  if n <= multiple:
    return max(minimum, 1 << (int(n) - 1).bit_length())
  return -(-int(n) // multiple) * multiple


def _batch_constraint(x: jax.Array, mesh: Mesh | None, batch_axis: Any) -> jax.Array:
  """Shards the leading (batch) axis of ``x`` over ``batch_axis`` of ``mesh`` (no-op without)."""
  if mesh is None or x.ndim == 0:
    return x
  sharding = NamedSharding(mesh, P(batch_axis, *([None] * (x.ndim - 1))))
  axes = batch_axis if isinstance(batch_axis, tuple) else (batch_axis,)
  types = dict(zip(mesh.axis_names, mesh.axis_types))
  if any(types[a] == jax.sharding.AxisType.Explicit for a in axes):
    return jax.sharding.reshard(x, sharding)
  return jax.lax.with_sharding_constraint(x, sharding)


def rollout_core(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    prompt_tokens_BP: jax.Array,
    prompt_mask_BP: jax.Array,
    rng: jax.Array,
    *,
    max_new_tokens: int,
    num_steps: int | jax.Array | None = None,
    temperature: float | jax.Array = 1.0,
    greedy: bool | None = None,
    top_k: int | None = None,
    top_p: float | jax.Array | None = None,
    eos_ids: int | Sequence[int] | jax.Array | None = None,
    pad_id: int | jax.Array = 0,
    num_samples: int = 1,
    mesh: Mesh | None = None,
    batch_axis: Any = "data",
) -> RolloutResult:
  r"""Pure (un-jitted) batched sampling: prefill the prompts, then decode in a ``lax.while_loop``.

  For each row r (prompt b = r // num_samples) and step n = 0, 1, ...:
    x_n ~ pi(. | prompt_b, x_{<n}), pi = :func:`sample_logits` of the model's logits,
  with the uniforms ``u[n, r] = jax.random.uniform(rng, (N, R))[n, r]``. The prompts are
  prefilled once (B rows) and the cache is repeated ``num_samples`` times (cache leaves are
  batch-leading; scalar leaves are shared).
  The loop stops when every row has emitted an EOS or after ``num_steps`` tokens; the work per
  step is one T = 1 ``model.decode`` and one sampling step. Compose it into a jitted program
  (``max_new_tokens``, ``greedy``, ``top_k``, ``num_samples``, ``mesh`` static).

  Args:
    graphdef, state: ``nnx.split(model)`` of a :class:`rljax.models.Transformer` (or any module
      with ``init_cache``, ``forward_hidden``, ``logits`` and ``decode``).
    prompt_tokens_BP: ``[B, P]`` int prompts, LEFT-padded (the last column is real).
    prompt_mask_BP: ``[B, P]`` 1 = real token, 0 = padding.
    rng: PRNG key.
    max_new_tokens: N, the static size of the outputs (and of the cache: P + N slots).
    num_steps: tokens to generate (<= N, may be traced); default N. Columns beyond it are pad.
    temperature: sampling temperature (may be traced); 0 (Python) = greedy.
    greedy: argmax decoding; None: ``temperature == 0`` (then ``temperature`` must be Python).
    top_k, top_p: filters (see :func:`sample_logits`).
    eos_ids: an id or ids ending a row (None: rows run to ``num_steps``).
    pad_id: written after EOS.
    num_samples: completions per prompt (adjacent rows).
    mesh, batch_axis: shard the batch over ``batch_axis`` of ``mesh`` (None: no constraint).

  Returns:
    :class:`RolloutResult` with ``[B * num_samples, N]`` arrays.
  """
  chex.assert_rank([prompt_tokens_BP, prompt_mask_BP], 2)
  chex.assert_equal_shape([prompt_tokens_BP, prompt_mask_BP])
  chex.assert_type(prompt_tokens_BP, int)
  if max_new_tokens < 1:
    raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
  if num_samples < 1:
    raise ValueError(f"num_samples must be >= 1, got {num_samples}")
  if greedy is None:
    if isinstance(temperature, jax.Array):
      raise ValueError("temperature is traced: pass greedy=True/False explicitly")
    if temperature < 0:
      raise ValueError(f"temperature must be >= 0, got {temperature}")
    greedy = temperature == 0
  if greedy:
    temperature = 1.0
  _check_filters(top_k, top_p)
  b, p = prompt_tokens_BP.shape
  r, n = b * num_samples, max_new_tokens
  if num_steps is None:
    num_steps = n
  num_steps = jnp.minimum(jnp.asarray(num_steps, jnp.int32), n)
  eos_E = None if eos_ids is None else jnp.asarray(eos_ids, jnp.int32).reshape(-1)
  pad_id = jnp.asarray(pad_id, jnp.int32)
  constrain = lambda x: _batch_constraint(x, mesh, batch_axis)

  model = nnx.merge(graphdef, state)
  tokens_BP = constrain(prompt_tokens_BP.astype(jnp.int32))
  mask_BP = constrain(prompt_mask_BP.astype(jnp.bool_))
  positions_BP = jnp.maximum(jnp.cumsum(mask_BP.astype(jnp.int32), axis=1) - 1, 0)
  cache = model.init_cache(b, p + n)
  h_BPD, cache = model.forward_hidden(tokens_BP, positions_BP, mask_BP, cache)
  logits_BV = model.logits(h_BPD[:, -1:])[:, 0]  # last prompt position only
  len_B = jnp.sum(mask_BP, axis=1, dtype=jnp.int32)
  if num_samples > 1:
    rep = lambda x: jnp.repeat(x, num_samples, axis=0) if x.ndim else x
    cache, logits_BV, len_B = jax.tree.map(rep, (cache, logits_BV, len_B))
  cache = jax.tree.map(constrain, cache)
  logits_RV, len_R = constrain(logits_BV), constrain(len_B)

  # All the uniforms at once: one PRNG call site in the program (threefry is slow to compile).
  u_NR = None if greedy else jax.random.uniform(rng, (n, r), jnp.float32)

  def sample(logits_RV, step):
    u_R = None if greedy else jax.lax.dynamic_index_in_dim(u_NR, step, keepdims=False)
    return sample_logits(
        logits_RV, rng, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
        uniform_B=u_R,
    )

  def is_eos(tok_R):
    if eos_E is None:
      return jnp.zeros(tok_R.shape, jnp.bool_)
    return jnp.any(tok_R[:, None] == eos_E[None, :], axis=1)

  def write(bufs, step, tok_R, lp_R, alive_R):
    tokens_RN, logp_RN, mask_RN = bufs
    upd = lambda buf, col: jax.lax.dynamic_update_slice(buf, col[:, None], (0, step))
    return (
        constrain(upd(tokens_RN, jnp.where(alive_R, tok_R, pad_id))),
        constrain(upd(logp_RN, jnp.where(alive_R, lp_R, 0.0))),
        constrain(upd(mask_RN, alive_R)),
    )

  tok_R, lp_R = sample(logits_RV, 0)
  bufs = (
      jnp.full((r, n), pad_id, jnp.int32),
      jnp.zeros((r, n), jnp.float32),
      jnp.zeros((r, n), jnp.bool_),
  )
  bufs = write(bufs, 0, tok_R, lp_R, jnp.ones((r,), jnp.bool_))
  done_R = is_eos(tok_R)

  def cond(carry):
    step, _, done_R, _, _ = carry
    return (step < num_steps) & ~jnp.all(done_R)

  def body(carry):
    step, tok_R, done_R, cache, bufs = carry
    pos_R1 = (len_R + step - 1)[:, None]
    logits_R1V, cache = model.decode(
        tok_R[:, None], pos_R1, jnp.ones((r, 1), jnp.bool_), cache
    )
    tok_R, lp_R = sample(logits_R1V[:, 0], step)
    alive_R = ~done_R
    bufs = write(bufs, step, tok_R, lp_R, alive_R)
    done_R = done_R | (alive_R & is_eos(tok_R))
    return step + 1, tok_R, done_R, cache, bufs

  carry = (jnp.int32(1), tok_R, done_R, cache, bufs)
  _, _, done_R, _, (tokens_RN, logp_RN, mask_RN) = jax.lax.while_loop(cond, body, carry)
  return RolloutResult(
      tokens=tokens_RN,
      logprobs=logp_RN,
      mask=mask_RN,
      lengths=jnp.sum(mask_RN, axis=1, dtype=jnp.int32),
      finished=done_R,
  )


@functools.partial(
    jax.jit,
    static_argnames=(
        "graphdef", "max_new_tokens", "greedy", "top_k", "num_samples", "mesh", "batch_axis"
    ),
)
def _generate_jit(
    graphdef, state, tokens_BP, mask_BP, rng, num_steps, temperature, top_p, eos_E, pad_id, *,
    max_new_tokens, greedy, top_k, num_samples, mesh, batch_axis,
):
  return rollout_core(
      graphdef, state, tokens_BP, mask_BP, rng, max_new_tokens=max_new_tokens,
      num_steps=num_steps, temperature=temperature, greedy=greedy, top_k=top_k, top_p=top_p,
      eos_ids=eos_E, pad_id=pad_id, num_samples=num_samples, mesh=mesh, batch_axis=batch_axis,
  )


def generate(
    model: nnx.Module,
    prompt_tokens: jax.Array | np.ndarray,
    prompt_mask: jax.Array | np.ndarray,
    *,
    max_new_tokens: int,
    rng: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | Sequence[int] | None = None,
    pad_id: int = 0,
    num_samples: int = 1,
    mesh: Mesh | None = None,
    batch_axis: Any = "data",
) -> RolloutResult:
  r"""Samples ``num_samples`` completions per prompt with one compiled program (the jit edge).

  The prompt length P and ``max_new_tokens`` N are bucketed with :func:`bucket_length` (prompts
  are left-padded to the bucket with ``pad_id`` and mask 0, which the model ignores; the loop
  runs N steps of an N-bucket buffer), and the compiled program is cached on (model graph,
  batch size, buckets, num_samples, greedy, top_k, whether top_p / eos are set, mesh): calls
  whose P and N fall in the same buckets never recompile. Temperature, top_p, eos ids, pad id
  and the exact N are runtime values. See :func:`rollout_core` and :func:`sample_logits`.

  Args:
    model: an :class:`rljax.models.Transformer` (any module with the same cache API).
    prompt_tokens: ``[B, P]`` int prompts, LEFT-padded.
    prompt_mask: ``[B, P]`` 1 = real token, 0 = padding.
    max_new_tokens: N >= 1.
    rng: PRNG key.
    temperature: >= 0; 0 = greedy.
    top_k: keep the k most probable tokens (None: all).
    top_p: nucleus mass in (0, 1] (None: no nucleus filter).
    eos_id: id or ids that end a completion (None: always N tokens).
    pad_id: token written after EOS and used to pad prompts to the bucket.
    num_samples: G completions per prompt, adjacent rows.
    mesh, batch_axis: shard the rows over ``batch_axis`` of ``mesh`` (B * num_samples and B
      must be divisible by its size); the model state is replicated onto the mesh unless it is
      already placed on it.

  Returns:
    :class:`RolloutResult`: ``tokens``, ``logprobs``, ``mask`` ``[B * num_samples, N]``,
    ``lengths``, ``finished`` ``[B * num_samples]``.
  """
  tokens_BP = np.asarray(prompt_tokens)
  mask_BP = np.asarray(prompt_mask)
  chex.assert_rank([tokens_BP, mask_BP], 2)
  chex.assert_equal_shape([tokens_BP, mask_BP])
  if not np.issubdtype(tokens_BP.dtype, np.integer):
    raise ValueError(f"prompt_tokens must be integers, got {tokens_BP.dtype}")
  if max_new_tokens < 1:
    raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
  if temperature < 0:
    raise ValueError(f"temperature must be >= 0, got {temperature}")
  _check_filters(top_k, top_p)
  b, p = tokens_BP.shape
  pb, nb = bucket_length(p), bucket_length(max_new_tokens)
  if pb > p:
    tokens_BP = np.pad(tokens_BP, ((0, 0), (pb - p, 0)), constant_values=pad_id)
    mask_BP = np.pad(mask_BP, ((0, 0), (pb - p, 0)))
  tokens_BP, mask_BP = tokens_BP.astype(np.int32), mask_BP.astype(np.bool_)
  eos_E = None
  if eos_id is not None:  # padded (repeating an id) to a multiple of 4 ids: a static shape
    eos_E = np.asarray(eos_id, np.int32).reshape(-1)
    if eos_E.size == 0:
      raise ValueError("eos_id must be an id, a non-empty sequence of ids, or None")
    eos_E = np.resize(eos_E, -(-eos_E.size // 4) * 4)
  graphdef, state = nnx.split(model)
  if mesh is not None:
    size = math.prod(mesh.shape[a] for a in (batch_axis if isinstance(batch_axis, tuple)
                                             else (batch_axis,)))
    if b % size:
      raise ValueError(f"batch size {b} must be divisible by the '{batch_axis}' mesh size {size}")
    batch_sh = NamedSharding(mesh, P(batch_axis, None))
    tokens_BP = jax.device_put(tokens_BP, batch_sh)
    mask_BP = jax.device_put(mask_BP, batch_sh)
    replicated = NamedSharding(mesh, P())
    on_mesh = lambda x: isinstance(getattr(x, "sharding", None), NamedSharding) and (
        x.sharding.mesh == mesh)
    state = jax.tree.map(lambda x: x if on_mesh(x) else jax.device_put(x, replicated), state)
  greedy = temperature == 0
  out = _generate_jit(
      graphdef, state, tokens_BP, mask_BP, rng, np.int32(max_new_tokens),
      np.float32(1.0 if greedy else temperature),
      None if top_p is None else np.float32(top_p), eos_E, np.int32(pad_id),
      max_new_tokens=nb, greedy=greedy, top_k=top_k, num_samples=num_samples, mesh=mesh,
      batch_axis=batch_axis,
  )
  if nb > max_new_tokens:
    out = out.replace(
        tokens=out.tokens[:, :max_new_tokens],
        logprobs=out.logprobs[:, :max_new_tokens],
        mask=out.mask[:, :max_new_tokens],
    )
  return out
