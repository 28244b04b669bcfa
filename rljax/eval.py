"""Evaluation metrics: the unbiased pass@k estimator.

Host-side numpy in float64 (evaluation counts are small integers, not traced arrays).
"""

import numpy as np

__all__ = ["evaluate", "pass_at_k", "sample_completions"]


def pass_at_k(n, c, k) -> np.ndarray | float:
  r"""Unbiased pass@k from n samples of which c are correct (Chen et al. 2021).

  pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i), and 1 when
  n - c < k. The product is taken as a sum of ``log1p(-k / i)`` and ``-expm1`` of it, in float64,
  so it is stable and accurate to ~1e-15 at n = 1024 (no huge binomials).

  Args:
    n: samples per problem (int >= 1), scalar or array.
    c: correct samples, 0 <= c <= n, scalar or array.
    k: the k of pass@k, 1 <= k <= n, scalar or array.
    All three broadcast against each other (e.g. ``c`` of shape ``[problems]`` with a scalar
    ``n`` and ``k`` of shape ``[K, 1]`` gives ``[K, problems]``).

  Returns:
    float64 array of the broadcast shape, or a Python float when every input is a scalar.
    Average it over problems for the benchmark's pass@k.

  Papers: Chen et al. 2021 (arXiv 2107.03374); used at n = 1024 by arXiv 2504.13837.
  """
  arrays = {}
  for name, value in (("n", n), ("c", c), ("k", k)):
    a = np.asarray(value)
    if a.dtype.kind not in "iub":
      if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
      else:
        raise TypeError(f"pass_at_k: `{name}` must hold integers, got dtype {a.dtype}")
    arrays[name] = a.astype(np.int64)
  n_, c_, k_ = np.broadcast_arrays(arrays["n"], arrays["c"], arrays["k"])
  if np.any(n_ < 1):
    raise ValueError(f"pass_at_k: `n` must be >= 1, got min {n_.min()}")
  if np.any((c_ < 0) | (c_ > n_)):
    raise ValueError("pass_at_k: `c` must satisfy 0 <= c <= n")
  if np.any((k_ < 1) | (k_ > n_)):
    raise ValueError("pass_at_k: `k` must satisfy 1 <= k <= n")
  max_n = int(n_.max()) if n_.size else 1
  i = np.arange(1, max_n + 1, dtype=np.float64)  # [N]
  n_e, c_e, k_e = (x[..., None] for x in (n_, c_, k_))  # [..., 1]
  in_product = (i > n_e - c_e) & (i <= n_e)  # [..., N]
  # Terms with i <= k only occur when n - c < k (the answer is then 1); keep them out of log1p.
  ratio = np.where(in_product & (i > k_e), k_e / i, 0.0)
  log_miss = np.sum(np.log1p(-ratio), axis=-1)  # log C(n-c, k) / C(n, k)
  result = np.where(n_ - c_ < k_, 1.0, 0.0 - np.expm1(log_miss))  # 0.0 - : no -0.0
  if np.ndim(n) == np.ndim(c) == np.ndim(k) == 0:
    return float(result)
  return result


# ------------------------------------------------------------------------------------------------
# Evaluation loops (the trainers' held-out accuracy; also `rljax eval`).


def sample_completions(
  model,
  task,
  tokenizer,
  examples,
  *,
  num_samples: int = 1,
  temperature: float = 0.0,
  top_p: float | None = None,
  batch_size: int = 64,
  max_prompt_len: int = 64,
  max_new_tokens: int = 48,
  rng=None,
  mesh=None,
  batch_axis="data",
) -> list[list[str]]:
  """``num_samples`` completions (text) of each example, generated in fixed-shape batches.

  Prompts are left-padded to ``max_prompt_len``; every call has ``batch_size`` prompts (the
  last batch is padded by repeating its last prompt, and those rows are discarded), so one
  program is compiled. ``temperature=0`` is greedy decoding.

  ``mesh`` / ``batch_axis``: shard each call's rows over that axis (or tuple of axes) of the
  mesh, as :func:`rljax.rollout.generate` does (``batch_size`` must divide by its size); without
  a mesh every device the model's parameters are on computes every row.

  Returns:
    ``[len(examples)][num_samples]`` completion strings.
  """
  import jax

  from rljax import rollout
  from rljax.train import _data
  from rljax.train._sharding import to_host

  if rng is None:
    rng = jax.random.key(0)
  out: list[list[str]] = []
  for start in range(0, len(examples), batch_size):
    chunk = list(examples[start : start + batch_size])
    real = len(chunk)
    chunk += [chunk[-1]] * (batch_size - real)
    prompt, mask = _data.encode_prompts(
      tokenizer, [task.format_prompt(e) for e in chunk], max_prompt_len, field="max_prompt_len"
    )
    res = rollout.generate(
      model, prompt, mask, max_new_tokens=max_new_tokens,
      rng=jax.random.fold_in(rng, start), temperature=temperature, top_p=top_p,
      eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, num_samples=num_samples,
      mesh=mesh, batch_axis=batch_axis,
    )
    tokens, valid = to_host(res.tokens), to_host(res.mask)  # whole arrays, also on many hosts
    texts = _data.decode_completions(tokenizer, tokens, valid)
    for i in range(real):
      out.append(texts[i * num_samples : (i + 1) * num_samples])
  return out


def evaluate(
  model,
  task,
  tokenizer,
  examples,
  *,
  num_samples: int = 1,
  temperature: float = 0.0,
  ks=(1,),
  top_p: float | None = None,
  batch_size: int = 64,
  max_prompt_len: int = 64,
  max_new_tokens: int = 48,
  rng=None,
  mesh=None,
  batch_axis="data",
) -> dict[str, float]:
  """Held-out accuracy and pass@k of a policy on a task's examples.

  With c_i of n samples of problem i correct (``task.is_correct``, never the shaped reward),
  ``pass@k = mean_i pass_at_k(n, c_i, k)``; ``accuracy`` = mean_i c_i / n (= pass@1).
  ``mesh`` / ``batch_axis`` shard the sampling's rows (see :func:`sample_completions`).

  Returns:
    ``{"accuracy", "pass@k" for k in ks, "reward_mean", "format_ok", "num_problems"}``.
  """
  comps = sample_completions(
    model, task, tokenizer, examples, num_samples=num_samples, temperature=temperature,
    top_p=top_p, batch_size=batch_size, max_prompt_len=max_prompt_len,
    max_new_tokens=max_new_tokens, rng=rng, mesh=mesh, batch_axis=batch_axis,
  )
  from rljax.tasks import extract_answer

  c = np.asarray([sum(task.is_correct(e, t) for t in ts) for e, ts in zip(examples, comps)])
  rewards = [task.reward(e, t) for e, ts in zip(examples, comps) for t in ts]
  fmt = [extract_answer(t) is not None for ts in comps for t in ts]
  res = {
    "accuracy": float(np.mean(c / num_samples)),
    "reward_mean": float(np.mean(rewards)),
    "format_ok": float(np.mean(fmt)),
    "num_problems": float(len(examples)),
  }
  for k in ks:
    res[f"pass@{k}"] = float(np.mean(pass_at_k(num_samples, c, k)))
  return res
