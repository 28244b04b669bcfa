"""Pure step functions ``state, batch -> state, metrics`` for SFT, GRPO/DAPO, PPO and DPO.

None of these call ``jax.jit``: the loops jit them once, at the edge, with explicit
shardings and a donated state (see ``rljax.train._loops.jit_step``). Static parts (the
model's graphdef, its non-trainable state, the optimizer and the algorithm config) are bound
with ``functools.partial``.

Batch layout (every algorithm): ``prompt [B, P]`` left-padded with ``prompt_mask [B, P]``,
``tokens [B, N]`` completion ids with ``mask [B, N]`` (1 up to and including EOS).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from rljax import losses
from rljax.train._config import DPOConfig, GRPOConfig, PPOConfig
from rljax.train._policy import TrainState, apply_gradients, completion_logprobs, masked_mean, merge

Batch = dict[str, jax.Array]


def _logprobs(params, graphdef, rest, batch: Batch, *, temperature=1.0, impl="auto",
              return_hidden=False):
  model = merge(graphdef, params, rest)
  return completion_logprobs(model, batch["prompt"], batch["prompt_mask"], batch["tokens"],
                             batch["mask"], temperature=temperature, impl=impl,
                             return_hidden=return_hidden)


# --------------------------------------------------------------------------------------------
# SFT


def sft_loss(params, batch: Batch, *, graphdef, rest, impl: str = "auto"):
  r"""Masked next-token negative log-likelihood on the answer tokens.

  L = -sum_{i,j} m_ij log p(y_ij | prompt_i, y_i,<j) / sum_{i,j} m_ij.

  Args:
    params: policy parameters.
    batch: ``prompt``/``prompt_mask`` ``[B, P]``, ``tokens``/``mask`` ``[B, N]`` (the target
      answer + EOS; the loss covers answer tokens only).
    graphdef, rest: the model's graph definition and non-trainable state.
    impl: log-prob implementation (see :func:`completion_logprobs`).

  Returns:
    ``(loss, metrics)``.
  """
  logp_BN, ent_BN = _logprobs(params, graphdef, rest, batch, impl=impl)
  m_BN = batch["mask"]
  loss = -masked_mean(logp_BN, m_BN)
  n_tok = jnp.sum(m_BN.astype(jnp.float32))
  # Token accuracy needs logits; the entropy is logged instead (cheap, from the kernel).
  return loss, {"loss": loss, "entropy": masked_mean(ent_BN, m_BN), "tokens": n_tok}


def sft_step(state: TrainState, batch: Batch, *, graphdef, rest,
             optimizer: optax.GradientTransformation, impl: str = "auto"
             ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SFT optimizer step. See :func:`sft_loss`."""
  grads, metrics = jax.grad(sft_loss, has_aux=True)(
      state.params, batch, graphdef=graphdef, rest=rest, impl=impl)
  state, gnorm = apply_gradients(state, grads, optimizer)
  return state, {**metrics, "grad_norm": gnorm}


# --------------------------------------------------------------------------------------------
# GRPO / DAPO


def grpo_loss(params, batch: Batch, *, graphdef, rest, cfg: GRPOConfig):
  r"""GRPO / DAPO policy loss of one minibatch.

  Per token: ``L = clipped_surrogate(logp, old_logp, A')`` (eps_low / eps_high / dual clip),
  times a truncated importance weight ``min(exp(old_logp - sampler_logp), cap)`` when
  ``is_correction="tis"``, plus ``kl_coef * kl_penalty(logp, ref_logp, kl_kind)``; reduced by
  ``aggregate(L, m', aggregation)`` (Dr. GRPO's constant: ``max_new_tokens``, whatever the
  batch's width) where ``m'`` is the loss mask times the top-rho entropy
  mask (or its complement). ``A' = entropy_advantage(A, H)`` when ``entropy_adv_alpha > 0``.

  Args:
    params: policy parameters.
    batch: the common layout plus ``advantages [B]`` and optionally ``old_logp [B, N]``
      (absent: on-policy, ``old_logp = stop_gradient(logp)``), ``ref_logp [B, N]`` and
      ``sampler_logp [B, N]``.
    graphdef, rest: the model's graph definition and non-trainable state.
    cfg: the GRPO config.

  Returns:
    ``(loss, metrics)``.

  Papers: GRPO (arXiv 2402.03300), DAPO (arXiv 2503.14476), 80/20 (arXiv 2506.01939),
  entropy advantage (arXiv 2506.14758).
  """
  logp_BN, ent_BN = _logprobs(params, graphdef, rest, batch, temperature=cfg.temperature,
                              impl=cfg.kernel_impl)
  m_BN = batch["mask"].astype(bool)
  chex.assert_rank(batch["advantages"], 1)
  old_BN = batch.get("old_logp")
  if old_BN is None:
    old_BN = jax.lax.stop_gradient(logp_BN)
  adv_BN = jnp.broadcast_to(batch["advantages"][:, None], logp_BN.shape).astype(jnp.float32)
  if cfg.entropy_adv_alpha > 0:
    adv_BN = losses.entropy_advantage(adv_BN, ent_BN, alpha=cfg.entropy_adv_alpha,
                                      kappa=cfg.entropy_adv_kappa)
  adv_BN = jnp.where(m_BN, adv_BN, 0.0)
  pg_BN = losses.clipped_surrogate(logp_BN, old_BN, adv_BN, eps_low=cfg.eps_low,
                                   eps_high=cfg.eps_high, dual_clip=cfg.dual_clip)
  if cfg.is_correction == "tis":
    w_BN = jnp.minimum(jnp.exp(jnp.clip(old_BN - batch["sampler_logp"], -20.0, 20.0)), cfg.is_cap)
    pg_BN = pg_BN * jax.lax.stop_gradient(jnp.where(m_BN, w_BN, 0.0))
  loss_BN = pg_BN
  kl = jnp.zeros((), jnp.float32)
  if cfg.kl_coef > 0:
    kl_BN = losses.kl_penalty(logp_BN, batch["ref_logp"], cfg.kl_kind)
    loss_BN = loss_BN + cfg.kl_coef * kl_BN
    kl = masked_mean(kl_BN, m_BN)
  keep_BN = m_BN
  if cfg.entropy_top_rho < 1.0:
    top_BN = losses.top_entropy_mask(jax.lax.stop_gradient(ent_BN), m_BN, rho=cfg.entropy_top_rho)
    keep_BN = top_BN if cfg.entropy_mask_side == "top" else m_BN & ~top_BN
  # Dr. GRPO's constant is the generation budget, not the batch's (possibly trimmed) width.
  loss = losses.aggregate(loss_BN, keep_BN, cfg.aggregation, max_len=cfg.max_new_tokens)
  fr = losses.clip_fractions(logp_BN, old_BN, adv_BN, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                             dual_clip=cfg.dual_clip)
  log_ratio_BN = jnp.where(m_BN, logp_BN - old_BN, 0.0)
  metrics = {
      "loss": loss,
      "entropy": masked_mean(ent_BN, m_BN),
      "entropy_kept": masked_mean(ent_BN, keep_BN),
      "kept_token_frac": masked_mean(keep_BN.astype(jnp.float32), m_BN),
      "clip_frac_low": masked_mean(fr.low.astype(jnp.float32), m_BN),
      "clip_frac_high": masked_mean(fr.high.astype(jnp.float32), m_BN),
      "clip_frac_dual": masked_mean(fr.dual.astype(jnp.float32), m_BN),
      "kl": kl,
      # approx KL(old || new), k3 estimator on the sampled tokens (Schulman's blog).
      "approx_kl": masked_mean(jnp.expm1(-log_ratio_BN) + log_ratio_BN, m_BN),
      "ratio_mean": masked_mean(jnp.exp(log_ratio_BN), m_BN),
  }
  return loss, metrics


def grpo_step(state: TrainState, batch: Batch, *, graphdef, rest,
              optimizer: optax.GradientTransformation, cfg: GRPOConfig
              ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One GRPO / DAPO minibatch update. See :func:`grpo_loss`."""
  grads, metrics = jax.grad(grpo_loss, has_aux=True)(
      state.params, batch, graphdef=graphdef, rest=rest, cfg=cfg)
  state, gnorm = apply_gradients(state, grads, optimizer)
  return state, {**metrics, "grad_norm": gnorm}


def sequence_logprobs(params, batch: Batch, *, graphdef, rest, temperature: float = 1.0,
                      impl: str = "auto") -> jax.Array:
  """Per-token log-probs ``[B, N]`` of the completions (old / reference policy log-probs)."""
  logp_BN, _ = _logprobs(params, graphdef, rest, batch, temperature=temperature, impl=impl)
  return logp_BN


# --------------------------------------------------------------------------------------------
# PPO


def value_head_init(d_model: int, key: jax.Array) -> dict[str, jax.Array]:
  """A zero-initialised linear value head ``{"kernel": [D, 1], "bias": [1]}``."""
  del key
  return {"kernel": jnp.zeros((d_model, 1), jnp.float32), "bias": jnp.zeros((1,), jnp.float32)}


def _values(params, batch: Batch, *, graphdef, rest, critic_graphdef, critic_rest, cfg: PPOConfig):
  """``(logp, entropy, values)`` ``[B, N]``; values from the shared trunk or a critic."""
  logp_BN, ent_BN, h_BND = _logprobs(params["policy"], graphdef, rest, batch,
                                     temperature=cfg.temperature, impl=cfg.kernel_impl,
                                     return_hidden=True)
  if not cfg.shared_trunk:
    _, _, h_BND = _logprobs(params["critic"], critic_graphdef, critic_rest, batch,
                            impl=cfg.kernel_impl, return_hidden=True)
  head = params["value_head"]
  v_BN = (jnp.einsum("BND,DO->BNO", h_BND.astype(jnp.float32), head["kernel"])[..., 0]
          + head["bias"][0])
  v_BN = jnp.where(batch["mask"].astype(bool), v_BN, 0.0)
  return logp_BN, ent_BN, v_BN


def ppo_values(params, batch: Batch, *, graphdef, rest, critic_graphdef=None, critic_rest=None,
               cfg: PPOConfig):
  """Rollout-time ``(logp, values)`` ``[B, N]`` for GAE and the clipped losses."""
  logp_BN, _, v_BN = _values(params, batch, graphdef=graphdef, rest=rest,
                             critic_graphdef=critic_graphdef, critic_rest=critic_rest, cfg=cfg)
  return logp_BN, v_BN


def ppo_loss(params, batch: Batch, *, graphdef, rest, critic_graphdef=None, critic_rest=None,
             cfg: PPOConfig):
  r"""PPO loss: clipped surrogate (token-mean) + value_coef * clipped value loss.

  Args:
    params: ``{"policy", "value_head"[, "critic"]}``.
    batch: the common layout plus ``old_logp``, ``old_values``, ``advantages`` and
      ``returns`` ``[B, N]`` (from :func:`rljax.losses.gae`, advantages whitened).
    graphdef, rest: the policy's graph definition and non-trainable state.
    critic_graphdef, critic_rest: the critic's, when ``cfg.shared_trunk`` is False.
    cfg: the PPO config.

  Returns:
    ``(loss, metrics)``.

  Paper: PPO (arXiv 1707.06347); "The 37 implementation details of PPO" for the value clip.
  """
  logp_BN, ent_BN, v_BN = _values(params, batch, graphdef=graphdef, rest=rest,
                                  critic_graphdef=critic_graphdef, critic_rest=critic_rest,
                                  cfg=cfg)
  m_BN = batch["mask"].astype(bool)
  adv_BN = batch["advantages"]
  if cfg.entropy_adv_alpha > 0:
    adv_BN = losses.entropy_advantage(adv_BN, ent_BN, alpha=cfg.entropy_adv_alpha,
                                      kappa=cfg.entropy_adv_kappa)
  adv_BN = jnp.where(m_BN, adv_BN, 0.0)
  pg_BN = losses.clipped_surrogate(logp_BN, batch["old_logp"], adv_BN, eps_low=cfg.eps_low,
                                   eps_high=cfg.eps_high)
  vf_BN = losses.clipped_value_loss(v_BN, batch["old_values"], batch["returns"],
                                    eps=cfg.value_clip)
  pg = losses.aggregate(pg_BN, m_BN, "token-mean")
  vf = losses.aggregate(vf_BN, m_BN, "token-mean")
  loss = pg + cfg.value_coef * vf
  fr = losses.clip_fractions(logp_BN, batch["old_logp"], adv_BN, eps_low=cfg.eps_low,
                             eps_high=cfg.eps_high)
  log_ratio_BN = jnp.where(m_BN, logp_BN - batch["old_logp"], 0.0)
  return loss, {
      "loss": loss, "policy_loss": pg, "value_loss": vf,
      "entropy": masked_mean(ent_BN, m_BN),
      "clip_frac_low": masked_mean(fr.low.astype(jnp.float32), m_BN),
      "clip_frac_high": masked_mean(fr.high.astype(jnp.float32), m_BN),
      "approx_kl": masked_mean(jnp.expm1(-log_ratio_BN) + log_ratio_BN, m_BN),
      "value_mean": masked_mean(v_BN, m_BN),
  }


def ppo_step(state: TrainState, batch: Batch, *, graphdef, rest, critic_graphdef=None,
             critic_rest=None, optimizer: optax.GradientTransformation, cfg: PPOConfig
             ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One PPO minibatch update. See :func:`ppo_loss`."""
  grads, metrics = jax.grad(ppo_loss, has_aux=True)(
      state.params, batch, graphdef=graphdef, rest=rest, critic_graphdef=critic_graphdef,
      critic_rest=critic_rest, cfg=cfg)
  state, gnorm = apply_gradients(state, grads, optimizer)
  return state, {**metrics, "grad_norm": gnorm}


# --------------------------------------------------------------------------------------------
# DPO


def _pair_batch(batch: Batch) -> Batch:
  """Stack chosen and rejected rows: ``[2B, ...]`` in the common layout."""
  cat = lambda a, b: jnp.concatenate([batch[a], batch[b]], axis=0)
  return {"prompt": cat("prompt", "prompt"), "prompt_mask": cat("prompt_mask", "prompt_mask"),
          "tokens": cat("chosen", "rejected"), "mask": cat("chosen_mask", "rejected_mask")}


def pair_logprobs(params, batch: Batch, *, graphdef, rest, impl: str = "auto"
                  ) -> tuple[jax.Array, jax.Array]:
  """Summed sequence log-probs ``(chosen [B], rejected [B])`` of a preference batch."""
  logp_BN, _ = _logprobs(params, graphdef, rest, _pair_batch(batch), impl=impl)
  seq_B = jnp.sum(logp_BN, axis=1)
  b = batch["prompt"].shape[0]
  return seq_B[:b], seq_B[b:]


def dpo_loss(params, batch: Batch, *, graphdef, rest, cfg: DPOConfig, impl: str = "auto"):
  r"""Mean DPO loss of a batch of pairs, with reference log-probs precomputed in the batch.

  Args:
    params: policy parameters.
    batch: ``prompt``/``prompt_mask`` ``[B, P]``; ``chosen``/``chosen_mask`` and
      ``rejected``/``rejected_mask`` ``[B, N]``; ``ref_chosen``, ``ref_rejected`` ``[B]``.
    graphdef, rest: the model's graph definition and non-trainable state.
    cfg: the DPO config (beta, kind, label smoothing).
    impl: log-prob implementation.

  Returns:
    ``(loss, metrics)``. Paper: DPO (arXiv 2305.18290) and the variants in ``dpo_loss``.
  """
  c_B, r_B = pair_logprobs(params, batch, graphdef=graphdef, rest=rest, impl=impl)
  l_B = losses.dpo_loss(c_B, r_B, batch["ref_chosen"], batch["ref_rejected"], beta=cfg.beta,
                        kind=cfg.kind, label_smoothing=cfg.label_smoothing)
  loss = jnp.mean(l_B)
  args = (c_B, r_B, batch["ref_chosen"], batch["ref_rejected"])
  return loss, {
      "loss": loss,
      "reward_margin": jnp.mean(losses.dpo_reward_margin(*args, beta=cfg.beta)),
      "reward_accuracy": jnp.mean(losses.dpo_reward_accuracy(*args, beta=cfg.beta)),
      "chosen_logp": jnp.mean(c_B), "rejected_logp": jnp.mean(r_B),
  }


def dpo_step(state: TrainState, batch: Batch, *, graphdef, rest,
             optimizer: optax.GradientTransformation, cfg: DPOConfig, impl: str = "auto"
             ) -> tuple[TrainState, dict[str, Any]]:
  """One DPO optimizer step. See :func:`dpo_loss`."""
  grads, metrics = jax.grad(dpo_loss, has_aux=True)(
      state.params, batch, graphdef=graphdef, rest=rest, cfg=cfg, impl=impl)
  state, gnorm = apply_gradients(state, grads, optimizer)
  return state, {**metrics, "grad_norm": gnorm}
