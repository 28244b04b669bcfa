"""Metrics: ``metrics.jsonl``, TensorBoard events, a tqdm bar, and a PNG of the curves."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np

from rljax.train._config import LogConfig
from rljax.train._sharding import is_primary

# Keys shown on the progress bar when present.
_BAR_KEYS = ("loss", "reward_mean", "accuracy", "entropy", "response_length", "kl")
# Curves in the final PNG (the first matching key of each group).
_CURVES = (
    ("reward", ("reward_mean",)),
    ("accuracy", ("accuracy", "eval/accuracy")),
    ("entropy", ("entropy",)),
    ("response length", ("response_length",)),
    ("loss", ("loss",)),
)


def _to_float(v: Any) -> float | None:
  try:
    f = float(np.asarray(v))
  except (TypeError, ValueError):
    return None
  return f


class MetricsLogger:
  """Writes one JSON line per logged step, TensorBoard scalars and a progress bar.

  Args:
    run_dir: the run folder.
    cfg: what to write.
    total: number of steps of the phase (for the progress bar).
    phase: a prefix such as ``"sft"`` or ``"grpo"`` stored in every record.
    initial: the first step (when resuming).
    enabled: whether this process writes or prints anything (default: only process 0, so that
      with many hosts one file and one bar record the run; the others just return the values).
  """

  def __init__(self, run_dir: str, cfg: LogConfig, *, total: int, phase: str, initial: int = 0,
               enabled: bool | None = None):
    self.run_dir, self.cfg, self.phase = run_dir, cfg, phase
    self.enabled = is_primary() if enabled is None else enabled
    self._jsonl = self._tb = self._bar = None
    if not self.enabled:
      return
    os.makedirs(run_dir, exist_ok=True)
    self._jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a")
    if cfg.tensorboard:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(run_dir, "tb"))
    if cfg.progress:
      from tqdm.auto import tqdm
      self._bar = tqdm(total=total, initial=initial, desc=phase, dynamic_ncols=True,
                       leave=True)

  def log(self, step: int, metrics: dict[str, Any], *, force: bool = False) -> dict[str, float]:
    """Record ``metrics`` at ``step``; returns the float values written."""
    vals = {k: f for k, v in metrics.items() if (f := _to_float(v)) is not None}
    if self._jsonl is not None and (force or step % self.cfg.every == 0):
      rec = {"phase": self.phase, "step": int(step), "time": round(time.time(), 3)}
      rec.update({k: (v if math.isfinite(v) else None) for k, v in vals.items()})
      self._jsonl.write(json.dumps(rec) + "\n")
      self._jsonl.flush()
      if self._tb is not None:
        for k, v in vals.items():
          self._tb.add_scalar(f"{self.phase}/{k}", v, step)
    if self._bar is not None:
      self._bar.set_postfix({k: f"{vals[k]:.3g}" for k in _BAR_KEYS if k in vals}, refresh=False)
      self._bar.update(1)
    return vals

  def write(self, text: str) -> None:
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.write(text)
    else:
      print(text, flush=True)

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.flush()
      self._tb.close()
    if self._bar is not None:
      self._bar.close()


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
  """All records of ``<run_dir>/metrics.jsonl``."""
  path = os.path.join(run_dir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def plot_curves(run_dir: str, out: str | None = None) -> str | None:
  """Save a PNG of the reward / accuracy / entropy / length / loss curves of a run.

  Returns:
    The PNG path, or ``None`` when there is nothing to plot.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  recs = read_metrics(run_dir)
  if not recs:
    return None
  phases = list(dict.fromkeys(r["phase"] for r in recs))
  panels = []
  for title, keys in _CURVES:
    for key in keys:
      if any(r.get(key) is not None for r in recs):
        panels.append((title, key))
        break
  if not panels:
    return None
  fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
  for ax, (title, key) in zip(axes[0], panels):
    for ph in phases:
      pts = [(r["step"], r[key]) for r in recs if r["phase"] == ph and r.get(key) is not None]
      if pts:
        x, y = zip(*pts)
        if len(pts) >= 30:  # raw curve faint, a moving average on top
          (line,) = ax.plot(x, y, alpha=0.25)
          w = max(len(pts) // 20, 3)
          ys = np.convolve(np.asarray(y, float), np.ones(w) / w, mode="valid")
          ax.plot(x[w - 1:], ys, color=line.get_color(), label=ph)
        else:
          ax.plot(x, y, label=ph, marker=".")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if len(phases) > 1:
      ax.legend(fontsize=7)
  fig.tight_layout()
  out = out or os.path.join(run_dir, "curves.png")
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return out
