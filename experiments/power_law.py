"""Power-law fits ``y = a * x^-b + c`` of the other studies' training curves, on zoomed windows.

Reads the committed ``experiments/results/<study>/results.json`` of every study that has one
(and any ``metrics.jsonl`` given with ``--metrics PATH:COLUMN``), and fits each loss / reward /
accuracy / entropy curve with ``rljax.powerlaw`` on the full window and on zoomed windows (the
second half and the last third of training, in steps). Reports R^2 and RMSE per curve and
window, backtests the law (fit the first two thirds, predict the last third, against a flat
"last value" forecast) and extrapolates to 2x and 10x the last step and to the asymptote
``c``, flagging every extrapolation whose fit is poor, degenerate or out of the metric's range.

There is no paper claim: the question is whether these short, small-scale curves are
power laws at all, and how far their fits can be trusted. The fits are scipy on the CPU and
take seconds; ``--preset`` is accepted for uniformity with the other scripts and changes
nothing.

Run: ``python experiments/power_law.py --preset cpu`` (see experiments/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C

from rljax.powerlaw import PowerLawFit, fit_metrics_file, fit_power_law, load_metrics

NAME = "power_law"
# Studies whose results.json this script reads (in this order); unknown folders with an
# RL-style results.json ("arms" with "curves") are read too.
STUDIES = ("dyt_vs_rmsnorm", "delta_rule", "sft_vs_rl", "pass_at_k", "entropy_minority",
           "entropy_advantage", "dapo_ablation", "difficulty", "swe_rl")
# The range a metric can take (None = unbounded): an asymptote or forecast outside it is flagged.
RANGES = {"loss": (0.0, None), "accuracy": (0.0, 1.0), "pass@k": (0.0, 1.0),
          "entropy": (0.0, None), "reward_mean": (None, None)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Preset:
  """What to fit: windows, backtest split, forecast horizons and the R^2 bar."""

  # (label, start as a fraction of the curve's last x); every window ends at the last point.
  windows: tuple[tuple[str, float], ...] = (("full", 0.0), ("second half", 0.5),
                                            ("last third", 2.0 / 3.0))
  backtest_frac: float = 2.0 / 3.0   # fit x <= frac * x_last, predict the rest
  flat_points: int = 5               # the flat forecast: mean of the fitted part's last points
  extrapolate: tuple[float, ...] = (2.0, 10.0)   # forecasts at these multiples of x_last
  r2_good: float = 0.9               # below this a fit is "poor" and its forecast not trusted
  b_min: float = 0.02                # b below this: a log-linear trend, asymptote unidentified
  min_points: int = 10               # fewer points: b and c too poorly determined to forecast
  rl_metrics: tuple[str, ...] = ("reward_mean", "accuracy", "entropy")

  def __post_init__(self):
    if not self.windows or self.windows[0][1] != 0.0:
      raise ValueError(f"windows must start with a full window (fraction 0.0), got {self.windows}")
    for label, frac in self.windows:
      if not 0.0 <= frac < 1.0:
        raise ValueError(f"windows: fraction of {label!r} must be in [0, 1), got {frac}")
    if not 0.0 < self.backtest_frac < 1.0:
      raise ValueError(f"backtest_frac must be in (0, 1), got {self.backtest_frac}")
    if self.flat_points < 1:
      raise ValueError(f"flat_points must be >= 1, got {self.flat_points}")
    if not self.extrapolate or min(self.extrapolate) <= 1.0:
      raise ValueError(f"extrapolate factors must be > 1, got {self.extrapolate}")
    if not 0.0 < self.r2_good <= 1.0:
      raise ValueError(f"r2_good must be in (0, 1], got {self.r2_good}")
    if self.b_min < 0.0:
      raise ValueError(f"b_min must be >= 0, got {self.b_min}")
    if self.min_points < 4:
      raise ValueError(f"min_points must be >= 4 (3 parameters), got {self.min_points}")


# The fits do not depend on the machine: every preset is the same.
PRESETS = {name: Preset() for name in ("smoke", "cpu", "gpu", "tpu")}


# --------------------------------------------------------------------------------------------
# Reading the curves


def _get(d, keys: Sequence, where: str):
  """``d[k0][k1]...``; a missing key raises naming the file and the key path."""
  cur = d
  for i, k in enumerate(keys):
    try:
      cur = cur[k]
    except (KeyError, IndexError, TypeError):
      path = "/".join(str(x) for x in keys[: i + 1])
      raise ValueError(f"{where}: missing key {path!r}") from None
  return cur


def _curve(study: str, group: str, label: str, metric: str, x, y, source: str, *,
           x_label: str = "step", n_replicas: int = 1) -> dict:
  x = np.asarray(x, dtype=np.float64)
  y = np.asarray(y, dtype=np.float64)
  if x.ndim != 1 or x.shape != y.shape:
    raise ValueError(f"{source}: x and y of {label!r} have shapes {x.shape} and {y.shape}")
  keep = x > 0  # a power law in x needs x > 0: step 0 (the initial eval) is left out
  return {"study": study, "group": group, "label": label, "metric": metric, "x_label": x_label,
          "x": x[keep], "y": y[keep], "dropped_nonpositive_x": int(np.sum(~keep)),
          "n_replicas": n_replicas, "source": source}


def _mean_rows(rows, where: str) -> np.ndarray:
  a = np.asarray(rows, dtype=np.float64)
  if a.ndim != 2:
    raise ValueError(f"{where}: expected [replicas, points], got shape {a.shape}")
  return a.mean(axis=0)


def curves_dyt(res: dict, path: str) -> list[dict]:
  """Train loss (every step) and held-out loss (every eval) per arm, mean over seeds."""
  out = []
  for i, run in enumerate(_get(res, ["runs"], path)):
    label = _get(run, ["label"], f"{path} runs/{i}")
    w = f"{path} runs/{i} ({label})"
    tl = _mean_rows(_get(run, ["train_loss"], w), f"{w} train_loss")
    out.append(_curve("dyt_vs_rmsnorm", "train loss", label, "loss", np.arange(1, tl.size + 1),
                      tl, f"{w}: train_loss", n_replicas=len(run.get("seeds", [0]))))
    hl = _mean_rows(_get(run, ["heldout_loss"], w), f"{w} heldout_loss")
    out.append(_curve("dyt_vs_rmsnorm", "held-out loss", label, "loss",
                      _get(run, ["eval_steps"], w), hl, f"{w}: heldout_loss",
                      n_replicas=len(run.get("seeds", [0]))))
  return out


def curves_delta(res: dict, path: str) -> list[dict]:
  """Per arm: the train loss (every step; the kv counts mixed in each batch) and the held-out
  query loss per number of key-value pairs (every eval), means over seeds. Results from the
  earlier layout (one replica per kv count, ``replicas``) give a train-loss curve per count."""
  out = []
  for i, run in enumerate(_get(res, ["runs"], path)):
    label = _get(run, ["label"], f"{path} runs/{i}")
    w = f"{path} runs/{i} ({label})"
    loss = np.asarray(_get(run, ["train_loss"], w), dtype=np.float64)
    if "replicas" in run:
      reps = run["replicas"]
      if loss.ndim != 2 or loss.shape[0] != len(reps):
        raise ValueError(f"{w}: train_loss shape {loss.shape} does not match {len(reps)} "
                         "replicas")
      kvs = [_get(r, ["kv_pairs"], f"{w} replicas/{j}") for j, r in enumerate(reps)]
      for kv in sorted(set(kvs)):
        rows = loss[[j for j, k in enumerate(kvs) if k == kv]]
        out.append(_curve("delta_rule", f"train loss, {kv} kv pairs", label, "loss",
                          np.arange(1, loss.shape[1] + 1), rows.mean(0),
                          f"{w}: train_loss[kv_pairs={kv}]", n_replicas=len(rows)))
      continue
    tl = _mean_rows(loss, f"{w} train_loss")
    out.append(_curve("delta_rule", "train loss (kv counts mixed)", label, "loss",
                      np.arange(1, tl.size + 1), tl, f"{w}: train_loss",
                      n_replicas=loss.shape[0]))
    steps = _get(run, ["eval_steps"], w)
    for kv, rows in _get(run, ["eval_loss_by_kv"], w).items():
      out.append(_curve("delta_rule", f"held-out query loss, {kv} kv pairs", label, "loss",
                        steps, _mean_rows(rows, f"{w} eval_loss_by_kv/{kv}"),
                        f"{w}: eval_loss_by_kv/{kv}", n_replicas=len(rows)))
  return out


def _arm_runs(arms: dict, where: str, prefix: str = ""):
  """``(arm, runs)`` pairs of an ``arms`` object: ``arm -> [runs]``, nested groups of those
  (difficulty's ``bands/<band>``) or ``arm -> {"runs": [...]}`` (difficulty's ``transfer/<e>``)."""
  for name, v in arms.items():
    arm = f"{prefix}{name}"
    if isinstance(v, list):
      yield arm, v
    elif isinstance(v, dict) and isinstance(v.get("runs"), list):
      yield arm, v["runs"]
    elif isinstance(v, dict):
      yield from _arm_runs(v, where, f"{arm}/")
    else:
      raise ValueError(f"{where}: arms/{arm} must be a list of runs or an object, got "
                       f"{type(v).__name__}")


def _eval_point_curves(runs, arm: str, study: str, where: str) -> list[dict]:
  """pass@1 per eval split vs step from ``<replica>/points/<i>/{step, eval/<split>/pass@1}``
  (sft_vs_rl's periodic evaluations), mean over replicas."""
  runs = [r for r in runs if isinstance(r, dict) and r.get("points")]
  if not runs:
    return []
  out = []
  steps = [[_get(pt, ["step"], f"{where}/{j}/points") for pt in r["points"]]
           for j, r in enumerate(runs)]
  if any(s != steps[0] for s in steps):
    raise ValueError(f"{where}: the seeds' eval points are at different steps; cannot average")
  for split in _get(runs[0], ["points", 0, "eval"], where):
    ys = [[_get(pt, ["eval", split, "pass@1"], f"{where}/{j}/points") for pt in r["points"]]
          for j, r in enumerate(runs)]
    out.append(_curve(study, f"eval pass@1 ({split})", arm, "accuracy", steps[0],
                      _mean_rows(ys, f"{where} points/eval/{split}"),
                      f"{where}: points/eval/{split}/pass@1", n_replicas=len(runs)))
  return out


def curves_rl(res: dict, path: str, study: str, metrics: Sequence[str]) -> list[dict]:
  """RL training curves (``arms/<arm>/<replica>/curves``, arms possibly nested), mean over
  seeds; periodic eval points (``<replica>/points``); and the pass@k vs k curves of a
  ``summary`` with ``ks`` and ``<arm>_mean`` lists."""
  out = []
  arms = _get(res, ["arms"], path)
  if not isinstance(arms, dict):
    raise ValueError(f"{path}: 'arms' must be an object of arm -> runs, got {type(arms).__name__}")
  for arm, all_runs in _arm_runs(arms, path):
    out += _eval_point_curves(all_runs, arm, study, f"{path} arms/{arm}")
    runs = [r for r in all_runs if "curves" in r]  # e.g. pass_at_k's base arm has no training
    if not runs:
      continue
    w = f"{path} arms/{arm}"
    steps = [np.asarray(_get(r, ["curves", "step"], f"{w}/{j}")) for j, r in enumerate(runs)]
    if any(s.shape != steps[0].shape or np.any(s != steps[0]) for s in steps):
      raise ValueError(f"{w}: the seeds' curves/step differ; cannot average them")
    for m in metrics:
      if m not in runs[0]["curves"]:
        continue
      ys = [_get(r, ["curves", m], f"{w}/{j}") for j, r in enumerate(runs)]
      out.append(_curve(study, m, arm, m, steps[0], _mean_rows(ys, f"{w} curves/{m}"),
                        f"{w}: curves/{m}", n_replicas=len(runs)))
  for split, s in (res.get("summary") or {}).items():
    if not (isinstance(s, dict) and "ks" in s):
      continue
    for key, ys in s.items():
      if key.endswith("_mean") and isinstance(ys, list) and len(ys) == len(s["ks"]):
        out.append(_curve(study, f"pass@k vs k ({split})", key[: -len("_mean")], "pass@k",
                          s["ks"], ys, f"{path} summary/{split}/{key}", x_label="k",
                          n_replicas=len(res.get("seeds", [0]))))
  return out


def read_study(path: str, study: str, p: Preset) -> list[dict]:
  """The curves of one study's results.json (ValueError naming the file on bad content)."""
  try:
    with open(path) as f:
      res = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e
  if not isinstance(res, dict):
    raise ValueError(f"{path}: expected a JSON object, got {type(res).__name__}")
  if study == "dyt_vs_rmsnorm":
    return curves_dyt(res, path)
  if study == "delta_rule":
    return curves_delta(res, path)
  if "arms" in res:
    return curves_rl(res, path, study, p.rl_metrics)
  return []


def parse_metrics_arg(spec: str) -> tuple[str, str]:
  """``PATH:COLUMN`` (split at the last colon, so paths may contain colons)."""
  path, sep, col = spec.rpartition(":")
  if not sep or not path or not col:
    raise ValueError(f"--metrics wants PATH:COLUMN, got {spec!r}")
  if not os.path.isfile(path):
    raise ValueError(f"--metrics {spec!r}: no file {path!r}")
  return path, col


def curve_from_metrics(path: str, col: str, x_key: str) -> dict:
  rows = load_metrics(path)
  pts = [(r[x_key], r[col]) for r in rows if x_key in r and col in r]
  if not pts:
    keys = sorted({k for r in rows for k in r})
    raise ValueError(f"no row of {path} has both {x_key!r} and {col!r}; keys present: {keys}")
  x, y = zip(*pts)
  name = os.path.basename(os.path.dirname(os.path.abspath(path))) or path
  return _curve("metrics.jsonl", col, name, col, x, y, f"{path}:{col}", x_label=x_key)


# --------------------------------------------------------------------------------------------
# Fitting


def _fit_dict(fit: PowerLawFit) -> dict:
  return fit.as_dict()


def _as_fit(d: dict) -> PowerLawFit:
  return PowerLawFit(**{f.name: d[f.name] for f in dataclasses.fields(PowerLawFit)})


def grid_check(x, y, increasing: bool, x_lo: float | None, x_hi: float | None = None) -> dict:
  """An independent fit of the same law on the same window, to check the library's converged.

  For a fixed ``b`` the law is linear in ``(a, c)``, so a dense grid of ``b`` in ``[0, 10]``
  (the library's bounds) with the least-squares ``(a, c)`` at each (``a`` clamped at 0) finds
  the global optimum to grid precision. Returns its ``a, b, c, r2, sse``.
  """
  keep = np.isfinite(x) & np.isfinite(y)
  if x_lo is not None:
    keep &= x >= x_lo
  if x_hi is not None:
    keep &= x <= x_hi
  xw, z = x[keep], (-y[keep] if increasing else y[keep])
  bs = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 801)])
  u_BN = np.power(xw[None, :], -bs[:, None])
  du_BN = u_BN - u_BN.mean(1, keepdims=True)
  dz_N = z - z.mean()
  var_B = np.sum(du_BN**2, 1)
  a_B = np.where(var_B > 0, np.sum(du_BN * dz_N[None, :], 1) / np.maximum(var_B, 1e-300), 0.0)
  a_B = np.maximum(a_B, 0.0)
  c_B = z.mean() - a_B * u_BN.mean(1)
  sse_B = np.sum((a_B[:, None] * u_BN + c_B[:, None] - z[None, :]) ** 2, 1)
  i = int(np.argmin(sse_B))
  ss_tot = float(np.sum(dz_N**2))
  sse = float(sse_B[i])
  return {"a": float(a_B[i]), "b": float(bs[i]), "c": float(c_B[i]), "sse": sse,
          "r2": 1.0 - sse / ss_tot if ss_tot > 0 else 1.0}


def _flags(fit: PowerLawFit, metric: str, p: Preset, forecasts: Sequence[float]) -> list[str]:
  flags = []
  if fit.r2 < p.r2_good:
    flags.append(f"poor fit (R^2 {fit.r2:.2f} < {p.r2_good})")
  if fit.n_points < p.min_points:
    flags.append(f"only {fit.n_points} points (< {p.min_points}): b, c poorly determined")
  if fit.b < p.b_min:
    flags.append(f"b ~ 0 ({fit.b:.3g}): a log-linear trend, asymptote not identified")
  elif fit.b > 9.9:
    flags.append(f"b at its upper bound ({fit.b:.3g})")
  lo, hi = RANGES.get(metric, (None, None))

  def outside(v):
    return (lo is not None and v < lo) or (hi is not None and v > hi)

  asym = fit.sign * fit.c
  if outside(asym):
    flags.append(f"asymptote {asym:.3g} outside the metric's range [{lo}, {hi}]")
  bad = [v for v in forecasts if outside(v)]
  if bad:
    flags.append(f"forecast {bad[0]:.3g} outside the metric's range [{lo}, {hi}]")
  return flags


def fit_curve(curve: dict, p: Preset,
              fitter: Callable[[Sequence[tuple[float | None, float | None]], bool],
                               list[PowerLawFit]] | None = None) -> dict:
  """Fits, backtest and forecasts of one curve; ``fitter(windows, increasing)`` overrides the
  in-memory fit (``--metrics`` curves use ``fit_metrics_file`` on the file itself)."""
  x, y = curve["x"], curve["y"]
  fin = np.isfinite(y)
  if fin.sum() < 4:
    return {"windows": {}, "skipped": f"{fin.sum()} finite points with x > 0 (need 4)"}
  if np.ptp(y[fin]) == 0:  # e.g. a verified pass@k of 0 at every k: no law to identify
    return {"windows": {}, "skipped": f"constant (every point {float(y[fin][0]):g})"}
  x_last = float(x[fin].max())
  # One orientation for every window of a curve (a zoomed window of a noisy curve could
  # flip the sign of its slope and fit the mirror image).
  increasing = bool(np.polyfit(np.log(x[fin]), y[fin], 1)[0] > 0)
  if fitter is None:
    def fitter(ws, inc):
      return [fit_power_law(x, y, x_min=lo, x_max=hi, increasing=inc) for lo, hi in ws]
  out = {"x_last": x_last, "increasing": increasing, "windows": {}}
  for label, frac in p.windows:
    lo = None if frac == 0.0 else frac * x_last
    try:
      (fit,) = fitter([(lo, None)], increasing)
    except ValueError as e:
      out["windows"][label] = {"x_lo": lo, "skipped": str(e)}
      continue
    xs = [f * x_last for f in p.extrapolate]
    ys = [float(v) for v in fit.predict(xs)]
    check = grid_check(x, y, increasing, lo)
    flags = _flags(fit, curve["metric"], p, ys)
    sse = fit.rmse**2 * fit.n_points
    check["sse_ratio"] = sse / check["sse"] if check["sse"] > 0 else (1.0 if sse == 0 else math.inf)
    if sse > 1.05 * check["sse"] + 1e-12:
      flags.insert(0, f"not converged (SSE {check['sse_ratio']:.3g}x the b-grid optimum, whose "
                   f"R^2 is {check['r2']:.2f} at b = {check['b']:.3g})")
    out["windows"][label] = {
        "x_lo": lo, "fit": _fit_dict(fit), "asymptote": fit.sign * fit.c,
        "forecast_x": xs, "forecast_y": ys, "check": check, "flags": flags}
  # Backtest: fit the first part, forecast the rest; compare with a flat forecast.
  cut = p.backtest_frac * x_last
  rest = fin & (x > cut)
  head = fin & (x <= cut)
  bt = {"x_cut": cut, "n_fit": int(head.sum()), "n_test": int(rest.sum())}
  if head.sum() >= 4 and rest.sum() >= 1:
    try:
      (fit,) = fitter([(None, cut)], increasing)
      err = fit.predict(x[rest]) - y[rest]
      flat = float(np.mean(y[head][-p.flat_points:]))
      bt |= {"fit": _fit_dict(fit), "rmse": float(np.sqrt(np.mean(err**2))),
             "flat_value": flat,
             "flat_rmse": float(np.sqrt(np.mean((flat - y[rest]) ** 2)))}
      bt["beats_flat"] = bt["rmse"] < bt["flat_rmse"]
    except ValueError as e:
      bt["skipped"] = str(e)
  else:
    bt["skipped"] = f"{int(head.sum())} points to fit, {int(rest.sum())} to test (need 4 and 1)"
  out["backtest"] = bt
  full = out["windows"].get("full", {})
  reasons = list(full.get("flags", ["no full-window fit"]))
  if "beats_flat" in bt and not bt["beats_flat"]:
    reasons.append("backtest worse than a flat forecast")
  elif "beats_flat" not in bt:
    reasons.append("no backtest")
  out["extrapolation_trusted"] = not reasons
  out["extrapolation_caveats"] = reasons
  return out


# --------------------------------------------------------------------------------------------
# Summary, figures, README


def kind_of(curve: dict) -> str:
  if curve["study"] == "metrics.jsonl":
    return "metrics.jsonl"
  if curve["metric"] == "pass@k":
    return "pass@k vs k"
  if curve["group"].startswith("held-out"):  # DyT's held-out loss, MQAR's query loss
    return "LM held-out loss (evals)"
  if curve["metric"] == "loss":
    return "LM train loss (every step)"
  return "RL training curve"


def described(curve: dict, p: Preset) -> bool:
  """A power law describes a curve: on the full window the library fit converged (matches the
  b-grid check), has R^2 >= r2_good, and its asymptote is inside the metric's range."""
  f = curve["fits"]["windows"].get(p.windows[0][0], {})
  return ("fit" in f and f["check"]["sse_ratio"] <= 1.05 and f["fit"]["r2"] >= p.r2_good
          and not any(fl.startswith("asymptote") for fl in f["flags"]))


def summarize(curves: list[dict], p: Preset) -> dict:
  """Per kind of curve: how many, median R^2 per window, good fits, trusted forecasts."""
  kinds: dict[str, dict] = {}
  for c in curves:
    k = kinds.setdefault(kind_of(c), {"curves": 0, "r2": {w: [] for w, _ in p.windows},
                                      "check_r2": [], "not_converged": 0, "fits": 0,
                                      "trusted": 0, "described": 0, "backtest_beats_flat": 0,
                                      "backtested": 0})
    k["curves"] += 1
    for w, _ in p.windows:
      f = c["fits"]["windows"].get(w, {})
      if "fit" in f:
        k["r2"][w].append(f["fit"]["r2"])
        k["fits"] += 1
        k["not_converged"] += int(f["check"]["sse_ratio"] > 1.05)
        if w == p.windows[0][0]:
          k["check_r2"].append(f["check"]["r2"])
    k["trusted"] += int(c["fits"].get("extrapolation_trusted", False))
    k["described"] += int(described(c, p))
    bt = c["fits"].get("backtest", {})
    if "beats_flat" in bt:
      k["backtested"] += 1
      k["backtest_beats_flat"] += int(bt["beats_flat"])
  for k in kinds.values():
    k["median_r2"] = {w: (float(np.median(v)) if v else None) for w, v in k["r2"].items()}
    k["good_fits"] = {w: int(sum(r >= p.r2_good for r in v)) for w, v in k["r2"].items()}
    k["fitted"] = {w: len(v) for w, v in k["r2"].items()}
    k["check_median_r2_full"] = float(np.median(k["check_r2"])) if k["check_r2"] else None
    k["check_good_fits_full"] = int(sum(r >= p.r2_good for r in k["check_r2"]))
    del k["r2"], k["check_r2"]
  return kinds


def verdict(summary: dict, p: Preset) -> tuple[str, str]:
  """A one-line verdict (how many curves a power law describes) and the numbers behind it."""
  if not summary:
    return "no curves", "No study results were found to fit."
  parts = []
  for kind, k in summary.items():
    parts.append(
        f"{kind}: the best power law (b-grid check) has full-window R^2 median "
        f"{_r2(k['check_median_r2_full'])} ({k['check_good_fits_full']} of {k['curves']} >= "
        f"{p.r2_good}); {k['described']} described (library fit converged, R^2 >= "
        f"{p.r2_good}, asymptote inside the metric's range); "
        f"library R^2 median {_r2(k['median_r2']['full'])}, {k['not_converged']} of {k['fits']} "
        f"library fits not converged; the backtest beat a flat forecast on "
        f"{k['backtest_beats_flat']} of {k['backtested']}; {k['trusted']} forecasts trusted.")
  n = sum(k["curves"] for k in summary.values())
  d = sum(k["described"] for k in summary.values())
  t = sum(k["trusted"] for k in summary.values())
  per = ", ".join(f"{kind} {k['described']}/{k['curves']}" for kind, k in summary.items())
  v = f"a power law describes {d} of {n} curves ({per}); {t} forecasts trusted"
  return v, " ".join(parts)


def _fmt(v, digits=3) -> str:
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return "-"
  if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3):
    return f"{v:.2e}"
  return f"{v:.{digits}f}"


def _r2(v) -> str:
  return "-" if v is None else f"{v:.2f}"


def _last(c: dict, p: Preset) -> float:
  """The mean of the curve's last ``flat_points`` finite values (where training stopped)."""
  y = c["y"][np.isfinite(c["y"])]
  return float(np.mean(y[-p.flat_points:])) if y.size else math.nan


def _win(c: dict, w: str, key: str) -> str:
  f = c["fits"]["windows"].get(w, {})
  if "fit" not in f:
    return "-"
  if key == "r2":
    return _r2(f["fit"]["r2"])
  return _fmt(f["fit"][key], 2)


def _groups(curves: list[dict]) -> dict[str, dict[str, list[dict]]]:
  """study -> group -> curves, in input order."""
  out: dict[str, dict[str, list[dict]]] = {}
  for c in curves:
    out.setdefault(c["study"], {}).setdefault(c["group"], []).append(c)
  return out


def plots(out: str, curves: list[dict], p: Preset) -> list[str]:
  plt = C.plt()
  figs = []
  zoom = p.windows[1] if len(p.windows) > 1 else None
  for study, groups in _groups(curves).items():
    n = len(groups)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    for ax, (group, cs) in zip(axes.flat, groups.items()):
      all_y = np.concatenate([c["y"][np.isfinite(c["y"])] for c in cs])
      x_last = max(c["fits"].get("x_last", float(np.max(c["x"]))) for c in cs)
      x_first = min(float(np.min(c["x"])) for c in cs)
      for c in cs:
        (line,) = ax.plot(c["x"], c["y"], ".", ms=3 if c["x"].size > 50 else 6, alpha=0.45,
                          label=c["label"])
        col = line.get_color()
        xs = np.geomspace(x_first, max(p.extrapolate) * x_last, 200)
        for w, style in ((p.windows[0][0], "-"), (zoom[0] if zoom else None, ":")):
          f = c["fits"]["windows"].get(w, {}) if w else {}
          if "fit" not in f:
            continue
          fit = _as_fit(f["fit"])
          xin = xs[(xs <= x_last) & (xs >= (f["x_lo"] or x_first))]
          ax.plot(xin, fit.predict(xin), style, color=col, lw=1.4)
          xout = xs[xs >= x_last]
          ax.plot(xout, fit.predict(xout), "--" if style == "-" else ":", color=col, lw=1.0,
                  alpha=0.7)
      if zoom:
        ax.axvspan(zoom[1] * x_last, x_last, color="tab:blue", alpha=0.08, lw=0)
      ax.axvspan(x_last, max(p.extrapolate) * x_last, color="gray", alpha=0.08, lw=0)
      ax.set_xscale("log")
      logy = bool(np.all(all_y > 0))
      lo, hi = float(all_y.min()), float(all_y.max())
      if logy:  # the data's range (forecasts that dive or blow up leave the frame)
        ax.set_yscale("log")
        ax.set_ylim(lo / 1.5, hi * 1.5)
      else:
        pad = 0.3 * (hi - lo) + 1e-6
        ax.set_ylim(lo - pad, hi + pad)
      ax.set(title=f"{group}" + ("" if logy else " (linear y: values <= 0)"),
             xlabel=f"{cs[0]['x_label']} (log)", ylabel=cs[0]["metric"])
      ax.grid(alpha=0.3, which="both")
      ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
      ax.axis("off")
    fig.suptitle(f"{study}: data (dots), full-window fit (solid), "
                 f"{zoom[0] + ' fit (dotted, blue band)' if zoom else ''}; forecasts to "
                 f"{max(p.extrapolate):g}x (dashed, gray band)", fontsize=9)
    fig.tight_layout()
    name = "fits_" + "".join(ch if ch.isalnum() else "_" for ch in study) + ".png"
    fig.savefig(os.path.join(out, name), dpi=100)
    plt.close(fig)
    figs.append(name)

  # Fit quality: R^2 per curve and window, grouped by study.
  fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * len(curves) + 2), 4.2))
  markers = ["o", "s", "^", "D"]
  for wi, (w, _) in enumerate(p.windows):
    xs, ys = [], []
    for i, c in enumerate(curves):
      f = c["fits"]["windows"].get(w, {})
      if "fit" in f:
        xs.append(i + (wi - 1) * 0.2)
        ys.append(max(f["fit"]["r2"], -0.2))
    ax.scatter(xs, ys, marker=markers[wi % len(markers)], s=14, label=f"{w} window")
  edges = np.cumsum([sum(len(g) for g in gs.values()) for gs in _groups(curves).values()])
  start = 0
  for study, end in zip(_groups(curves), edges):
    ax.axvline(end - 0.5, color="gray", lw=0.5)
    ax.text((start + end - 1) / 2, -0.32, study, ha="center", fontsize=7, rotation=0)
    start = end
  ax.axhline(p.r2_good, color="red", lw=0.8, ls="--", label=f"R^2 = {p.r2_good}")
  ax.set(ylim=(-0.4, 1.05), xticks=[], ylabel="R^2 (clipped at -0.2)",
         title="Fit quality per curve and window")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(os.path.join(out, "fit_quality.png"), dpi=100)
  plt.close(fig)
  figs.append("fit_quality.png")
  return figs


def write_readme(out: str, res: dict) -> None:
  p = res["config"]
  curves = res["curves"]
  wnames = [w for w, _ in p.windows]
  x_mult = " / ".join(f"{m:g}x" for m in p.extrapolate)
  lines = [
      "# Power-law fits of the studies' training curves",
      "",
      "Question: are the loss, reward, accuracy and entropy curves of the other studies power "
      "laws in the step, `y = a * x^-b + c` (a rising curve is fitted as `-y`), and can their "
      "fits be extrapolated? There is no paper claim to reproduce; the fits are "
      "`rljax.powerlaw.fit_power_law` (scipy least squares, `a > 0`, `0 <= b <= 10`).",
      "",
      f"Method: each curve (mean over its seeds, points with x > 0) is fitted on the windows "
      f"{', '.join(f'{w} (x >= {f:.2g} x_last)' for w, f in p.windows)}; R^2 and RMSE are on "
      f"the fitted window. Backtest: fit x <= {p.backtest_frac:.2g} x_last, forecast the rest, "
      f"RMSE against a flat forecast (the mean of the fitted part's last {p.flat_points} "
      f"points). Forecasts at {x_mult} the last x and the asymptote `c` come from the full "
      f"window; a forecast is **trusted** only if R^2 >= {p.r2_good}, b >= {p.b_min}, the "
      f"asymptote and forecasts are inside the metric's range, and the backtest beats the "
      f"flat forecast. Every fit is checked against an independent one on the same window: "
      f"for a fixed `b` the law is linear in `(a, c)`, so least squares over a grid of 802 "
      f"values of `b` in [0, 10] finds the best power law to grid precision; a library fit "
      f"whose SSE exceeds 1.05x the grid's is flagged *not converged* (`fit_power_law` "
      f"returns its initial guess when scipy stops at `maxfev`). A curve counts as "
      f"*described* by a power law if the library fit converged, has R^2 >= {p.r2_good} and "
      f"its asymptote is inside the metric's range; the check's R^2 says how well the best "
      f"power law could do. "
      f"Preset `{res['preset']}` (all presets are the same), "
      f"{res['wall_time_s']:.1f} s on {res['machine_words']}.",
      "",
      "Inputs: " + "; ".join(f"`{k}` {v}" for k, v in res["inputs"].items()) + ".",
      "",
  ]
  summ = res["summary"]
  lines += ["| kind of curve | curves | median R^2 " + " / ".join(wnames) + " | R^2 >= "
            f"{p.r2_good} (full) | b-grid check: median R^2, >= {p.r2_good} (full) | "
            "described (R^2 and asymptote) | library fits not converged | backtest beats flat | "
            "forecasts trusted |",
            "|---|---|---|---|---|---|---|---|---|"]
  for kind, k in summ.items():
    mr = " / ".join(_r2(k["median_r2"][w]) for w in wnames)
    lines.append(f"| {kind} | {k['curves']} | {mr} | {k['good_fits']['full']} of "
                 f"{k['fitted']['full']} | {_r2(k['check_median_r2_full'])}, "
                 f"{k['check_good_fits_full']} | {k['described']} | "
                 f"{k['not_converged']} of {k['fits']} | "
                 f"{k['backtest_beats_flat']} of {k['backtested']} | {k['trusted']} |")
  lines += ["", f"Verdict: **{res['verdict']}**. {res['verdict_reason']}", ""]
  desc = [c for c in curves if described(c, p)]
  if desc:
    lines += [f"The curves a power law describes (full-window fit; last value = mean of the "
              f"last {p.flat_points} points):", ""]
    for c in desc:
      fw = c["fits"]["windows"]["full"]
      trust = ("forecast trusted" if c["fits"]["extrapolation_trusted"] else
               "forecast not trusted: " + "; ".join(c["fits"]["extrapolation_caveats"]))
      lines.append(
          f"- {c['study']} {c['group']}, {c['label']}: last {_fmt(_last(c, p))} at "
          f"{c['x_label']} {c['fits']['x_last']:g}; forecast "
          + ", ".join(f"{_fmt(y)} at {x:g}" for x, y in zip(fw["forecast_x"], fw["forecast_y"]))
          + f"; asymptote {_fmt(fw['asymptote'])} (b = {fw['fit']['b']:.2f}, R^2 "
          f"{fw['fit']['r2']:.3f}, {fw['fit']['n_points']} points); {trust}")
    lines.append("")
  last_w = wnames[-1]
  drops = [(kind, k["median_r2"]["full"], k["median_r2"][last_w]) for kind, k in summ.items()
           if k["median_r2"]["full"] is not None and k["median_r2"][last_w] is not None
           and k["median_r2"][last_w] < k["median_r2"]["full"] - 0.2]
  if drops:
    lines += [
        "Zoomed windows: the median R^2 falls from the full window to the " + last_w + " ("
        + "; ".join(f"{kind} {a:.2f} -> {b:.2f}" for kind, a, b in drops) + "). Late in a "
        "short run the trend left is small next to the step-to-step noise (one batch per "
        "step), so a zoomed fit explains little of the variance even where the law holds; "
        "its `b` swings between windows (the per-curve tables), which is itself a sign that "
        "these curves do not pin down one exponent.", ""]
  nc = [(c, w) for c in curves for w, f in c["fits"]["windows"].items()
        if "check" in f and f["check"]["sse_ratio"] > 1.05]
  if nc:
    lines += [
        f"Convergence: in {len(nc)} fits `rljax.powerlaw.fit_power_law` stopped at scipy's "
        "`maxfev` and returned its initial guess (R^2 as low as "
        f"{min(c['fits']['windows'][w]['fit']['r2'] for c, w in nc):.2f}): "
        + "; ".join(f"{c['study']} {c['group']} {c['label']} ({w}: R^2 "
                    f"{c['fits']['windows'][w]['fit']['r2']:.2f}, check "
                    f"{c['fits']['windows'][w]['check']['r2']:.2f} at b = "
                    f"{c['fits']['windows'][w]['check']['b']:.2g})" for c, w in nc)
        + ". The check puts the best law at b -> 0 there: the curve is a straight line in "
        "log x (or bends the other way), where `a` and `c` run off to infinity together and "
        "the iterations never settle. These fits are flagged and their forecasts not trusted.",
        ""]
  if res.get("notes"):
    lines += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
  lines += ["![fit quality](fit_quality.png)", ""]
  for study, groups in _groups(curves).items():
    fig = "fits_" + "".join(ch if ch.isalnum() else "_" for ch in study) + ".png"
    lines += [f"## {study}", "", f"![{study}]({fig})", ""]
    for group, cs in groups.items():
      x_last = max(c["fits"].get("x_last", float(np.max(c["x"]))) for c in cs)
      lines += [
          f"**{group}** (x = {cs[0]['x_label']}, last x = {x_last:g}"
          f", {cs[0]['n_replicas']} seed(s) averaged)", "",
          "| curve | n | R^2 " + " / ".join(wnames) + " | b " + " / ".join(wnames)
          + " | RMSE (full) | last value | asymptote (full) | forecast " + x_mult
          + " | backtest RMSE (fit / flat) | forecast trusted? |",
          "|---|---|---|---|---|---|---|---|---|---|"]
      for c in cs:
        fw = c["fits"]["windows"].get("full", {})
        if "fit" not in fw:
          lines.append(f"| {c['label']} | {c['x'].size} | not fitted: "
                       f"{c['fits'].get('skipped', fw.get('skipped', '-'))} ||||||||")
          continue
        bt = c["fits"]["backtest"]
        btxt = (f"{_fmt(bt['rmse'])} / {_fmt(bt['flat_rmse'])}" if "rmse" in bt else "-")
        trust = ("yes" if c["fits"]["extrapolation_trusted"] else
                 "no: " + "; ".join(c["fits"]["extrapolation_caveats"]))
        lines.append(
            f"| {c['label']} | {fw['fit']['n_points']} | "
            + " / ".join(_win(c, w, "r2") for w in wnames) + " | "
            + " / ".join(_win(c, w, "b") for w in wnames)
            + f" | {_fmt(fw['fit']['rmse'])} | {_fmt(_last(c, p))} | {_fmt(fw['asymptote'])} | "
            + " / ".join(_fmt(v) for v in fw["forecast_y"]) + f" | {btxt} | {trust} |")
      lines.append("")
  rl = [c for c in curves if kind_of(c) == "RL training curve"]
  span = lambda v: f"{min(v)}" if min(v) == max(v) else f"{min(v)}-{max(v)}"
  rl_what = (f"the RL curves are {span([len(c['x']) for c in rl])} steps, each the mean of "
             f"{span([c['n_replicas'] for c in rl])} seed(s), whose step-to-step noise is as "
             "large as their trend, so their R^2 measures noise as much as shape; "
             if rl else "")
  lines += [
      f"Caveats: {rl_what}a window with fewer than "
      "4 points is not fitted (3 parameters); `b` near 0 means the data are a straight line "
      "in log x and `a`, `c` trade off freely (the asymptote is then meaningless); none of "
      "these curves reaches the regime (many epochs of a large model) where power laws are "
      "usually measured, so the forecasts say where a curve is heading, not what a longer "
      "run would reach.",
      "",
      f"Reproduce: `{res['command']}` (reads the committed results; every fit is in "
      "`results.json`; `--render-only` redraws the figures and this README).",
  ]
  with open(os.path.join(out, "README.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def _notes(curves: list[dict], skipped: dict[str, str], p: Preset) -> list[str]:
  notes = [f"`{s}`: skipped, {why}" for s, why in skipped.items()]
  dropped = [c for c in curves if c["dropped_nonpositive_x"]]
  if dropped:
    notes.append(f"{len(dropped)} curves had points at x <= 0 (the step-0 evaluation), left out "
                 "of the fits")
  whole = [c for c in curves if "skipped" in c["fits"]]
  if whole:
    notes.append(f"{len(whole)} curves were not fitted at all: " + "; ".join(
        f"{c['study']} {c['group']} {c['label']} ({c['fits']['skipped']})" for c in whole))
  unfit = sorted({w for c in curves for w, f in c["fits"]["windows"].items() if "skipped" in f})
  if unfit:
    n = sum("skipped" in f for c in curves for f in c["fits"]["windows"].values())
    notes.append(f"{n} zoomed windows ({', '.join(unfit)}) had fewer than 4 points and were not "
                 "fitted (e.g. held-out evals every 50 steps, pass@k at 9 values of k)")
  return notes


# --------------------------------------------------------------------------------------------
# Driver


def _to_json(curves: list[dict]) -> list[dict]:
  return [c | {"x": c["x"].tolist(), "y": c["y"].tolist()} for c in curves]


def _from_json(curves: list[dict]) -> list[dict]:
  return [c | {"x": np.asarray(c["x"], dtype=np.float64),
               "y": np.asarray([np.nan if v is None else v for v in c["y"]], dtype=np.float64)}
          for c in curves]


def render_only(out: str) -> dict:
  """Figures and README again from ``out/results.json`` (no fitting)."""
  path = os.path.join(out, "results.json")
  if not os.path.isfile(path):
    raise ValueError(f"--render-only: no {path}")
  with open(path) as f:
    res = json.load(f)
  cfg = _get(res, ["config"], path)
  res["config"] = Preset(**{k: (tuple(tuple(x) if isinstance(x, list) else x for x in v)
                                if isinstance(v, list) else v) for k, v in cfg.items()})
  res["curves"] = _from_json(_get(res, ["curves"], path))
  # the summary and verdict are derived from the stored fits: recompute them
  res["summary"] = summarize(res["curves"], res["config"])
  res["verdict"], res["verdict_reason"] = verdict(res["summary"], res["config"])
  res["figures"] = plots(out, res["curves"], res["config"])
  write_readme(out, res)
  C.write_json(path, res | {"curves": _to_json(res["curves"])})
  return res


def main(argv: list[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                  help="accepted for uniformity; every preset fits the same way")
  ap.add_argument("--out", default=None, help=f"output folder (default experiments/results/{NAME})")
  ap.add_argument("--results-root", default=C.RESULTS_ROOT,
                  help="folder with one <study>/results.json per study (default: the committed "
                  "experiments/results)")
  ap.add_argument("--studies", nargs="+", default=None,
                  help="only these studies (default: every folder of --results-root)")
  ap.add_argument("--metrics", action="append", default=[], metavar="PATH:COLUMN",
                  help="also fit COLUMN of a run's metrics.jsonl (repeatable)")
  ap.add_argument("--metrics-x", default="step", help="the x column of --metrics files")
  ap.add_argument("--render-only", action="store_true",
                  help="re-draw the figures and README from an existing results.json")
  args = ap.parse_args(argv)
  out = C.results_dir(NAME, args.out)
  if args.render_only:
    return render_only(out)
  p = PRESETS[args.preset]
  watch = C.Stopwatch()
  machine = C.machine_info()
  root = args.results_root
  if not os.path.isdir(root):
    raise ValueError(f"--results-root: no folder {root!r}")
  metrics = [parse_metrics_arg(s) for s in args.metrics]  # fail early on a bad spec
  if args.studies is not None:
    names = list(args.studies)
  else:
    found = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)) and d != NAME)
    names = [s for s in STUDIES if s in found] + [d for d in found if d not in STUDIES]
  curves, inputs, skipped = [], {}, {}
  for study in names:
    path = os.path.join(root, study, "results.json")
    if not os.path.isfile(path):
      why = ("no results.json (not yet run)" if os.path.isdir(os.path.join(root, study))
             else "no such study folder")
      print(f"{NAME}: {study}: {why}, skipped")
      skipped[study] = why
      continue
    cs = read_study(path, study, p)
    if not cs:
      print(f"{NAME}: {study}: no curves this script can read in {path}, skipped")
      skipped[study] = "no curves this script can read"
      continue
    inputs[study] = f"{len(cs)} curves from {os.path.relpath(path, root)}"
    curves += cs
  for path, col in metrics:
    c = curve_from_metrics(path, col, args.metrics_x)
    c["fits"] = fit_curve(c, p, fitter=lambda ws, inc, path=path, col=col: fit_metrics_file(
        path, col, x_key=args.metrics_x, windows=ws, increasing=inc))
    inputs[f"{path}:{col}"] = "1 curve (a local run folder, not committed)"
    curves.append(c)
  for c in curves:
    if "fits" not in c:
      c["fits"] = fit_curve(c, p)
  summary = summarize(curves, p)
  v, why = verdict(summary, p)
  cmd = f"python experiments/{NAME}.py --preset {args.preset}" + "".join(
      f" --metrics '{s}'" for s in args.metrics)
  res = {
      "study": NAME, "preset": args.preset, "config": p, "machine": machine,
      "machine_words": C.machine_words(machine), "command": cmd, "results_root": root,
      "inputs": inputs, "skipped": skipped, "summary": summary, "verdict": v,
      "verdict_reason": why, "curves": curves,
  }
  res["notes"] = _notes(curves, skipped, p)
  res["figures"] = plots(out, curves, p)
  res["wall_time_s"] = watch()
  write_readme(out, res)
  C.write_json(os.path.join(out, "results.json"), res | {"curves": _to_json(curves)})
  print(f"{NAME}: {len(curves)} curves, {v} ({res['wall_time_s']:.1f} s) -> {out}")
  return res


if __name__ == "__main__":
  main()
