"""rljax.losses in your own training loop: a few GRPO/DAPO-style steps on a toy policy.

The "policy" is a table of logits, one row per (prompt, position), standing in for an LM.
Prompt p wants the token TARGET[p] at every position; sampling stops at EOS (token 0).
Reward = fraction of the T positions that hold the target, so it rises as the policy learns.
"""

import jax
import jax.numpy as jnp
import optax

from rljax import losses

P, G, T, V = 4, 8, 6, 8  # prompts, completions per prompt, max tokens, vocabulary
EOS = 0
TARGET = jnp.array([1, 3, 5, 7])  # the token each prompt asks for


def token_logp(logits_BTV, tokens_BT):
  logp_BTV = jax.nn.log_softmax(logits_BTV.astype(jnp.float32), axis=-1)
  return jnp.take_along_axis(logp_BTV, tokens_BT[..., None], axis=-1)[..., 0]


def rollout(params_PTV, ref_params_PTV, key):
  """Samples G completions per prompt; returns a flat batch of B = P * G rows."""
  tokens_PGT = jax.random.categorical(key, params_PTV[:, None], axis=-1, shape=(P, G, T))
  is_eos = tokens_PGT == EOS
  mask_PGT = jnp.cumsum(is_eos, axis=-1) - is_eos == 0  # tokens up to and including EOS
  hits_PGT = (tokens_PGT == TARGET[:, None, None]) & mask_PGT
  rewards_PG = hits_PGT.sum(-1) / T
  adv_PG = losses.group_advantages(rewards_PG, scale="std")  # GRPO: (R - mean) / std
  prompt_B = jnp.repeat(jnp.arange(P), G)
  tokens_BT = tokens_PGT.reshape(P * G, T)
  batch = dict(
      prompt_B=prompt_B,
      tokens_BT=tokens_BT,
      mask_BT=mask_PGT.reshape(P * G, T),
      adv_B=adv_PG.reshape(P * G),
      old_logp_BT=token_logp(params_PTV[prompt_B], tokens_BT),
      ref_logp_BT=token_logp(ref_params_PTV[prompt_B], tokens_BT),
  )
  return batch, rewards_PG.mean()


def loss_fn(params_PTV, batch):
  logits_BTV = params_PTV[batch["prompt_B"]]
  logp_BT = token_logp(logits_BTV, batch["tokens_BT"])
  pg_BT = losses.clipped_surrogate(
      logp_BT, batch["old_logp_BT"], batch["adv_B"], eps_low=0.2, eps_high=0.28
  )
  kl_BT = losses.kl_penalty(logp_BT, batch["ref_logp_BT"], kind="k3")
  # Train on the top half of the valid tokens by entropy, pooled over the batch (80/20 paper).
  entropy_BT = losses.token_entropy(logits_BTV)
  keep_BT = losses.top_entropy_mask(entropy_BT, batch["mask_BT"], rho=0.5)
  loss = losses.aggregate(pg_BT + 0.01 * kl_BT, keep_BT, "token-mean")
  return loss, losses.aggregate(kl_BT, batch["mask_BT"], "token-mean")


optimizer = optax.adam(0.1)


@jax.jit
def train_step(params_PTV, opt_state, ref_params_PTV, key):
  batch, mean_reward = rollout(params_PTV, ref_params_PTV, key)
  for _ in range(2):  # two optimisation epochs on each batch, as in PPO
    (loss, kl), grads = jax.value_and_grad(loss_fn, has_aux=True)(params_PTV, batch)
    updates, opt_state = optimizer.update(grads, opt_state)
    params_PTV = optax.apply_updates(params_PTV, updates)
  return params_PTV, opt_state, loss, kl, mean_reward


def main():
  params_PTV = jnp.zeros((P, T, V))  # uniform policy
  ref_params_PTV = params_PTV
  opt_state = optimizer.init(params_PTV)
  key = jax.random.key(0, impl="rbg")  # compiles much faster on CPU than the default threefry
  rewards = []
  for step in range(30):
    key, step_key = jax.random.split(key)
    params_PTV, opt_state, loss, kl, reward = train_step(
        params_PTV, opt_state, ref_params_PTV, step_key
    )
    rewards.append(float(reward))
    if step % 5 == 0 or step == 29:
      print(f"step {step:2d}  loss {float(loss):+.4f}  kl {float(kl):.4f}  reward {reward:.3f}")
  first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
  print(f"mean reward, first 5 steps {first:.3f} -> last 5 steps {last:.3f}")


if __name__ == "__main__":
  main()
