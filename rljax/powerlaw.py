"""Power-law fits of training curves: ``y = a * x^(-b) + c``.

Used by ``experiments/power_law.py`` on the curves of the other studies, and usable on any
``metrics.jsonl`` a run writes (one JSON object per line, with a step column and metrics).
Fits run with ``scipy.optimize.curve_fit`` in log-parameterised form (``a = exp(log_a)``),
which keeps ``a > 0`` and conditions the problem at the very different scales of loss and
reward curves. A decreasing curve (a loss) has ``a > 0, b > 0``; an increasing curve that
saturates (a reward) is fitted as ``-y`` and reported with ``sign = -1``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["PowerLawFit", "fit_metrics_file", "fit_power_law", "load_metrics"]


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
  """The fitted ``y = sign * (a * x^(-b) + c)`` and its quality on the fitted window."""

  a: float
  b: float
  c: float
  sign: float
  r2: float
  rmse: float
  x_min: float
  x_max: float
  n_points: int

  def predict(self, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return self.sign * (self.a * np.power(x, -self.b) + self.c)

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def _model(x, log_a, b, c):
  return np.exp(log_a) * np.power(x, -b) + c


def fit_power_law(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    x_min: float | None = None,
    x_max: float | None = None,
    increasing: bool | None = None,
) -> PowerLawFit:
  r"""Least-squares fit of ``y = a * x^(-b) + c`` on the window ``x_min <= x <= x_max``.

  Args:
    x: ``[N]`` positive abscissae (steps, tokens, FLOPs).
    y: ``[N]`` the metric; non-finite points are dropped (and counted out of ``n_points``).
    x_min, x_max: the zoomed window to fit (inclusive); ``None`` = no bound.
    increasing: fit ``-y`` (a saturating rise, e.g. reward). ``None`` decides from the sign
      of the slope of a straight-line fit over the window.

  Returns:
    A :class:`PowerLawFit` with the parameters, R^2 and RMSE on the window.

  Raises:
    ValueError: naming the argument, for mismatched lengths, non-positive x in the window,
      or fewer than 4 finite points in the window (3 parameters need at least 4 to judge
      the fit).
  """
  from scipy import optimize

  x = np.asarray(x, dtype=np.float64)
  y = np.asarray(y, dtype=np.float64)
  if x.ndim != 1 or y.shape != x.shape:
    raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
  keep = np.isfinite(x) & np.isfinite(y)
  if x_min is not None:
    keep &= x >= x_min
  if x_max is not None:
    keep &= x <= x_max
  x, y = x[keep], y[keep]
  if x.size < 4:
    raise ValueError(
        f"need at least 4 finite points in the window [x_min={x_min}, x_max={x_max}], "
        f"got {x.size}"
    )
  if np.any(x <= 0):
    raise ValueError(f"x must be positive for a power law, got min(x) = {x.min()}")
  if increasing is None:
    increasing = np.polyfit(np.log(x), y, 1)[0] > 0
  sign = -1.0 if increasing else 1.0
  z = sign * y

  # Initial guess: the best (a, c) on a grid of b (for fixed b the law is linear in a, c),
  # which is also the answer when scipy does not converge (b -> 0: a log-linear curve).
  bs = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 401)])
  u = np.power(x[None, :], -bs[:, None])
  du, dz = u - u.mean(1, keepdims=True), z - z.mean()
  var = np.sum(du**2, 1)
  ga = np.maximum(np.sum(du * dz[None, :], 1) / np.maximum(var, 1e-300), 1e-12)
  gc = z.mean() - ga * u.mean(1)
  i = int(np.argmin(np.sum((ga[:, None] * u + gc[:, None] - z[None, :]) ** 2, 1)))
  p0 = (math.log(ga[i]), bs[i], gc[i])
  try:
    params, _ = optimize.curve_fit(
        _model, x, z, p0=p0, bounds=([-np.inf, 0.0, -np.inf], [np.inf, 10.0, np.inf]),
        maxfev=2000, ftol=1e-12, xtol=1e-12, gtol=1e-12,  # the grid start is already close
    )
    if np.sum((_model(x, *params) - z) ** 2) > np.sum((_model(x, *p0) - z) ** 2):
      params = np.asarray(p0)
  except RuntimeError:  # did not converge: the grid optimum
    params = np.asarray(p0)
  log_a, b, c = (float(p) for p in params)
  pred = _model(x, log_a, b, c)
  ss_res = float(np.sum((z - pred) ** 2))
  ss_tot = float(np.sum((z - z.mean()) ** 2))
  r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
  return PowerLawFit(
      a=math.exp(log_a), b=b, c=c, sign=sign, r2=r2,
      rmse=math.sqrt(ss_res / x.size), x_min=float(x.min()), x_max=float(x.max()),
      n_points=int(x.size),
  )


def load_metrics(path: str | os.PathLike) -> list[dict]:
  """Reads a ``metrics.jsonl`` file: one JSON object per line; a bad line raises with its number."""
  rows = []
  with open(path) as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{lineno}: not a JSON object ({e.msg})") from e
  return rows


def fit_metrics_file(
    path: str | os.PathLike,
    key: str,
    *,
    x_key: str = "step",
    windows: Sequence[tuple[float | None, float | None]] = ((None, None),),
    increasing: bool | None = None,
) -> list[PowerLawFit]:
  """Fits ``key`` against ``x_key`` of a ``metrics.jsonl`` on each window.

  Rows without ``key`` are skipped (runs log some metrics only every few steps); a file in
  which no row has it raises, naming the key and the keys it does have.
  """
  rows = load_metrics(path)
  pts = [(r[x_key], r[key]) for r in rows if key in r and x_key in r]
  if not pts:
    keys = sorted({k for r in rows for k in r})
    raise ValueError(f"no row of {path} has both {x_key!r} and {key!r}; keys present: {keys}")
  x, y = map(np.asarray, zip(*pts))
  return [fit_power_law(x, y, x_min=lo, x_max=hi, increasing=increasing) for lo, hi in windows]
