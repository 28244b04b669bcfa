"""Evaluation metrics: the unbiased pass@k estimator.

Host-side numpy in float64 (evaluation counts are small integers, not traced arrays).
"""

import numpy as np

__all__ = ["pass_at_k"]


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
