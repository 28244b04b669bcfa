"""The policy as pure functions of its parameters: train state, model split/merge, log-probs."""

from __future__ import annotations

from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from rljax.train._config import ModelSpec

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class TrainState(flax.struct.PyTreeNode):
  """Everything a step changes: a pytree, so it can be jitted, sharded, donated and saved.

  Attributes:
    step: int32 scalar, optimizer steps taken.
    params: the trainable parameters (an ``nnx.State`` of ``nnx.Param``, or any pytree).
    opt_state: the optax state.
    rng: ``uint32`` raw key data (``jax.random.key_data``), so checkpoints store plain arrays.
  """

  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array

  @classmethod
  def create(cls, params: Any, optimizer: optax.GradientTransformation, seed: int):
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
               rng=jax.random.key_data(jax.random.key(seed)))


def apply_gradients(state: TrainState, grads: Any, optimizer: optax.GradientTransformation
                    ) -> tuple[TrainState, jax.Array]:
  """One optax update; returns the new state and the global gradient norm."""
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), \
      optax.tree.norm(grads)


def transformer_config(spec: ModelSpec, vocab_size: int):
  """The ``rljax.models.TransformerConfig`` of a :class:`ModelSpec`."""
  from rljax.models import TransformerConfig

  mixers = spec.mixers()
  return TransformerConfig(
      vocab_size=vocab_size, d_model=spec.d_model, num_layers=spec.num_layers,
      num_heads=spec.num_heads, num_kv_heads=spec.num_kv_heads, mlp_dim=spec.mlp_dim,
      norm=spec.norm, mixers=mixers[0] if len(mixers) == 1 else mixers,
      residual=spec.residual, tie_embeddings=spec.tie_embeddings,
      dtype=_DTYPES[spec.dtype], param_dtype=_DTYPES[spec.param_dtype], remat=spec.remat)


def build_model(spec: ModelSpec, vocab_size: int, seed: int):
  """A fresh ``rljax.models.Transformer``, or the Hugging Face checkpoint ``spec.hf_path``."""
  if spec.hf_path:
    from rljax.models import hf
    return hf.from_pretrained(spec.hf_path)
  from rljax.models import Transformer

  cfg = transformer_config(spec, vocab_size)
  # One compiled initialiser instead of an eager dispatch (and compile) per parameter.
  return nnx.jit(lambda: Transformer(cfg, rngs=nnx.Rngs(seed)))()


def split(model: nnx.Module) -> tuple[Any, Any, Any]:
  """``(graphdef, params, rest)``: trainable ``nnx.Param`` state and everything else."""
  return nnx.split(model, nnx.Param, ...)


def merge(graphdef: Any, params: Any, rest: Any) -> nnx.Module:
  return nnx.merge(graphdef, params, rest)


def completion_logprobs(
    model: nnx.Module,
    prompt_BP: jax.Array,
    prompt_mask_BP: jax.Array,
    tokens_BN: jax.Array,
    mask_BN: jax.Array,
    *,
    temperature: float = 1.0,
    impl: str = "auto",
    return_hidden: bool = False,
):
  r"""Log-probs and entropies of completion tokens given their prompts.

  The sequence is ``[prompt, completion]`` with attention mask ``[prompt_mask, mask]``; the
  hidden state at position ``P - 1 + j`` predicts completion token ``j``. With
  ``l = h W / temperature``: ``logp_j = l_{y_j} - logsumexp(l)``, ``H_j = -sum p log p``,
  computed by ``rljax.kernels.fused_linear_logprobs_and_entropy`` from the final hidden
  states (no ``[B, N, V]`` logits) unless ``impl="dense"`` (``model.logits`` + log-softmax).

  Args:
    model: an ``rljax.models.Transformer``.
    prompt_BP: ``[B, P]`` left-padded prompt ids.
    prompt_mask_BP: ``[B, P]`` 1 for real prompt tokens.
    tokens_BN: ``[B, N]`` completion ids (padding after EOS).
    mask_BN: ``[B, N]`` 1 for valid completion tokens (EOS included).
    temperature: the sampling temperature.
    impl: ``"dense"`` or a kernel implementation (``"auto"``, ``"reference"``, ``"xla"``,
      ``"pallas"``).
    return_hidden: also return the completion hidden states ``[B, N, D]`` (value heads).

  Returns:
    ``(logp [B, N], entropy [B, N])`` fp32, 0 where ``mask`` is 0 (and ``h [B, N, D]``).
  """
  chex.assert_rank([prompt_BP, prompt_mask_BP, tokens_BN, mask_BN], 2)
  chex.assert_equal_shape([prompt_BP, prompt_mask_BP])
  chex.assert_equal_shape([tokens_BN, mask_BN])
  chex.assert_equal_shape_prefix([prompt_BP, tokens_BN], 1)
  p, n = prompt_BP.shape[1], tokens_BN.shape[1]
  seq_BT = jnp.concatenate([prompt_BP, tokens_BN], axis=1).astype(jnp.int32)
  attn_BT = jnp.concatenate([prompt_mask_BP, mask_BN], axis=1).astype(jnp.int32)
  h_BTD, _ = model.forward_hidden(seq_BT, attention_mask=attn_BT)
  h_BND = jax.lax.dynamic_slice_in_dim(h_BTD, p - 1, n, axis=1)
  m_BN = mask_BN.astype(bool)
  if impl == "dense":
    logits_BNV = model.logits(h_BND) / temperature
    logz_BNV = jax.nn.log_softmax(logits_BNV, axis=-1)
    logp_BN = jnp.take_along_axis(logz_BNV, tokens_BN[..., None].astype(jnp.int32), -1)[..., 0]
    ent_BN = -jnp.sum(jnp.exp(logz_BNV) * logz_BNV, axis=-1)
  else:
    from rljax.kernels import fused_linear_logprobs_and_entropy

    b, d = h_BND.shape[0], h_BND.shape[2]
    logp, ent = fused_linear_logprobs_and_entropy(
        h_BND.reshape(b * n, d), model.lm_head_kernel(), tokens_BN.reshape(b * n).astype(jnp.int32),
        temperature=temperature, impl=impl)
    logp_BN, ent_BN = logp.reshape(b, n), ent.reshape(b, n)
  logp_BN = jnp.where(m_BN, logp_BN.astype(jnp.float32), 0.0)
  ent_BN = jnp.where(m_BN, ent_BN.astype(jnp.float32), 0.0)
  if return_hidden:
    return logp_BN, ent_BN, h_BND
  return logp_BN, ent_BN


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  """``sum(x m) / max(sum(m), 1)`` (0 for an all-masked input)."""
  m = mask.astype(jnp.float32)
  return jnp.sum(jnp.where(m > 0, x, 0.0) * m) / jnp.maximum(jnp.sum(m), 1.0)
