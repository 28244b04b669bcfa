"""Shared utilities of the experiment scripts: seeds, machine info, results, mesh, LM steps, plots.

Every study trains ``S`` independent replicas (seeds, or seeds x task settings) of one
architecture at once: the parameters are stacked on a leading replica axis and the step is
``jax.vmap``-ed over it, so a study compiles once per architecture, not once per seed. The
batch axis (axis 1, after the replica axis) is sharded over all devices of a
``jax.sharding.Mesh`` (data parallel); parameters are replicated.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import rljax
from rljax.kernels import fused_linear_logprobs_and_entropy
from rljax.models import Transformer, TransformerConfig
from rljax.train import MeshConfig, OptimConfig, make_mesh, make_optimizer

RESULTS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
BATCH_AXES = ("data", "fsdp")

# --------------------------------------------------------------------------------------------
# Machine, seeds, results


# Before JAX's first computation: XLA:CPU's per-step temporary buffers are kept and reused
# instead of page-faulted back every step (the same numbers; SFT steps ~30% faster on the
# 2-core VM, GRPO steps unchanged; see rljax.reuse_host_memory). False when a test process
# imports this late (JAX already up).
HOST_MEMORY_REUSED = rljax.reuse_host_memory(warn=False)

# When and under what load this process (a study) started: machine_info() is called when the
# results are written, at the end.
_START_LOAD = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
_START_UTC = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
  """Where a study ran: host, CPU count, JAX backend and devices, library versions, and the
  load average and UTC time when the process started."""
  import flax

  devices = jax.devices()
  return {
      "host_platform": platform.platform(),
      "python": platform.python_version(),
      "cpu_count": os.cpu_count(),
      "jax": jax.__version__,
      "flax": flax.__version__,
      "backend": jax.default_backend(),
      "device_kind": devices[0].device_kind,
      "num_devices": len(devices),
      "load_average_at_start": _START_LOAD,
      "utc_start": _START_UTC,
      "compile_cache": jax.config.jax_compilation_cache_dir,
      "host_memory_reused": HOST_MEMORY_REUSED,
  }


def compilation_cache(path: str | None) -> str | None:
  """Turn on JAX's persistent compilation cache in the folder ``path`` (``None``: turn it off).

  An RL study trains many runs of one architecture (arms, seeds, chunks), each a new ``jax.jit``
  of the same steps, and the batch padding (``pad_multiple``) gives a run a few dozen shapes;
  without the cache every run compiles each shape again (2-3 s apiece on 2 CPU cores). With it
  a later run still traces and lowers but loads the executable: swe_rl's three later GRPO arms
  took 144-157 s instead of 169-184 s, sft_vs_rl's arms 7.8 min instead of 9.0. Entries are
  keyed by the program (HLO, compile options, JAX version, backend), so a hit loads the same
  executable: the numbers do not change, only the time. Every compile is kept (no minimum
  compile time or size). The folder is machine-specific: keep it in the work dir, out of git.
  """
  from jax.experimental.compilation_cache import compilation_cache as cc

  if path is not None:
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
  if jax.config.jax_compilation_cache_dir != path:
    cc.reset_cache()  # JAX opens its cache once; a new folder (or none) needs a fresh start
    jax.config.update("jax_compilation_cache_dir", path)
  if path is not None:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path


def machine_words(m: dict[str, Any]) -> str:
  """A results README's words for :func:`machine_info`: the machine and, on CPU, the load
  average when the study started (a loaded VM runs several times slower)."""
  if m["backend"] != "cpu":
    return f"{m['num_devices']} x {m['device_kind']}"
  load = m.get("load_average_at_start")
  how = f"; load average {load[0]:.1f} at the start" if load else ""
  return f"a {m['cpu_count']}-core CPU VM ({m['num_devices']} JAX device(s){how})"


def results_dir(name: str, out: str | None) -> str:
  """``out`` or ``experiments/results/<name>``, created."""
  path = out or os.path.join(RESULTS_ROOT, name)
  os.makedirs(path, exist_ok=True)
  return path


def _jsonable(x: Any) -> Any:
  if dataclasses.is_dataclass(x) and not isinstance(x, type):
    return _jsonable(dataclasses.asdict(x))
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.ndarray, jax.Array)):
    return _jsonable(np.asarray(x).tolist())
  if isinstance(x, (np.floating, float)):
    return None if not np.isfinite(x) else float(x)
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (str, int, bool)) or x is None:
    return x
  return str(x)


def write_json(path: str, obj: Any) -> None:
  """JSON with numpy / jax arrays as lists and non-finite floats as null."""
  with open(path, "w") as f:
    json.dump(_jsonable(obj), f, indent=1)
    f.write("\n")


def mean_std(x: Any, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Mean and (population) std over ``axis``."""
  a = np.asarray(x, dtype=np.float64)
  return a.mean(axis=axis), a.std(axis=axis)


def fmt_pm(values: Sequence[float], digits: int = 3) -> str:
  """``"m +- s"`` over seeds (just ``m`` for one value)."""
  m, s = mean_std(values)
  if len(values) == 1:
    return f"{float(m):.{digits}f}"
  return f"{float(m):.{digits}f} +- {float(s):.{digits}f}"


class Stopwatch:
  """Wall time since construction."""

  def __init__(self):
    self.t0 = time.perf_counter()

  def __call__(self) -> float:
    return time.perf_counter() - self.t0


# --------------------------------------------------------------------------------------------
# Models, replicas, mesh


def init_replicas(cfg: TransformerConfig, seeds: Sequence[int]):
  """``(graphdef, params [S, ...], rest [S, ...], one_params)`` for one model per seed.

  ``one_params`` is the first replica's unstacked parameters (for the weight-decay mask, which
  looks at ranks).
  """
  splits = []
  for s in seeds:
    model = Transformer(cfg, rngs=nnx.Rngs(int(s)))
    splits.append(nnx.split(model, nnx.Param, ...))
  graphdef = splits[0][0]
  params = jax.tree.map(lambda *xs: jnp.stack(xs), *[sp[1] for sp in splits])
  rest = jax.tree.map(lambda *xs: jnp.stack(xs), *[sp[2] for sp in splits])
  return graphdef, params, rest, splits[0][1]


def tile_replicas(tree, n: int):
  """``n`` copies of every ``[S, ...]`` leaf, stacked to ``[n * S, ...]`` (copy-major)."""
  return jax.tree.map(lambda x: jnp.concatenate([x] * n, axis=0), tree)


def count_params(one_params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(one_params)))


def data_mesh():
  """A ``Mesh`` over all local devices, every device on the "data" axis."""
  return make_mesh(MeshConfig())


def replica_batch_sharding(mesh, ndim: int) -> NamedSharding:
  """``[S, B, ...]``: replicas replicated, rows over ("data", "fsdp")."""
  return NamedSharding(mesh, PartitionSpec(None, BATCH_AXES, *([None] * (ndim - 2))))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def adamw(lr: float, steps: int, warmup: int, weight_decay: float, one_params):
  """The rljax AdamW (warm-up + cosine to 10%, clip 1.0, no decay on norms / DyT alpha)."""
  cfg = OptimConfig(learning_rate=lr, warmup_steps=warmup, decay_steps=max(steps - warmup, 1),
                    schedule="cosine", min_lr_ratio=0.1, weight_decay=weight_decay,
                    grad_clip=1.0)
  return cfg, make_optimizer(cfg, params=one_params)


# --------------------------------------------------------------------------------------------
# LM loss and steps


def lm_loss(params, rest, graphdef, inputs_BT, targets_BT, weights_BT, impl: str = "auto"):
  r"""Weighted next-token NLL ``-sum_t w_t log p(y_t | x_<=t) / sum_t w_t`` of one replica.

  The log-probs come from ``rljax.kernels.fused_linear_logprobs_and_entropy`` on the final
  hidden states (no ``[B, T, V]`` logits) with implementation ``impl``.
  """
  model = nnx.merge(graphdef, params, rest)
  h_BTD, _ = model.forward_hidden(inputs_BT)
  b, t, d = h_BTD.shape
  logp, _ = fused_linear_logprobs_and_entropy(
      h_BTD.reshape(b * t, d), model.lm_head_kernel(), targets_BT.reshape(b * t).astype(jnp.int32),
      impl=impl)
  w = weights_BT.reshape(b * t).astype(jnp.float32)
  return -jnp.sum(logp.astype(jnp.float32) * w) / jnp.maximum(jnp.sum(w), 1.0)


def lm_eval(params, rest, graphdef, inputs_BT, targets_BT, weights_BT):
  """``(weighted NLL, weighted argmax accuracy)`` of one replica from dense fp32 logits."""
  model = nnx.merge(graphdef, params, rest)
  logits_BTV = model(inputs_BT)
  logz_BTV = jax.nn.log_softmax(logits_BTV, axis=-1)
  logp_BT = jnp.take_along_axis(logz_BTV, targets_BT[..., None].astype(jnp.int32), -1)[..., 0]
  hit_BT = (jnp.argmax(logits_BTV, axis=-1) == targets_BT).astype(jnp.float32)
  w = weights_BT.astype(jnp.float32)
  denom = jnp.maximum(jnp.sum(w), 1.0)
  return -jnp.sum(logp_BT * w) / denom, jnp.sum(hit_BT * w) / denom


def make_steps(graphdef, optimizer: optax.GradientTransformation, mesh, *, impl: str = "auto",
               lr_per_replica: bool = False):
  """Jitted, replica-vmapped ``train(params, opt, rest, x, y, w) -> (params, opt, loss [S])``
  and ``evaluate(params, rest, x, y, w) -> (nll [S], acc [S])``; batches ``[S, B, T]`` sharded
  on B, state donated.

  With ``lr_per_replica`` the train step is ``train(params, opt, rest, lr [S], x, y, w)`` and
  each replica's update is multiplied by its ``lr``: build ``optimizer`` with a peak learning
  rate of 1 (:func:`adamw` ``(1.0, ...)``) and one compiled step trains a whole learning-rate
  grid side by side. AdamW's update (decoupled weight decay included) is the schedule times a
  direction that does not depend on it, so this is the same update as a peak of ``lr``.
  """

  def one_train(params, opt_state, rest, lr, x, y, w):
    loss, grads = jax.value_and_grad(lm_loss)(params, rest, graphdef, x, y, w, impl)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    if lr is not None:
      updates = jax.tree.map(lambda u: (u * lr).astype(u.dtype), updates)
    return optax.apply_updates(params, updates), opt_state, loss

  def one_eval(params, rest, x, y, w):
    return lm_eval(params, rest, graphdef, x, y, w)

  bsh = replica_batch_sharding(mesh, 3)
  rep = replicated(mesh)
  if lr_per_replica:
    train = jax.jit(jax.vmap(one_train), in_shardings=(rep, rep, rep, rep, bsh, bsh, bsh),
                    out_shardings=(rep, rep, rep), donate_argnums=(0, 1))
  else:
    train = jax.jit(jax.vmap(lambda p, o, r, x, y, w: one_train(p, o, r, None, x, y, w)),
                    in_shardings=(rep, rep, rep, bsh, bsh, bsh),
                    out_shardings=(rep, rep, rep), donate_argnums=(0, 1))
  evaluate = jax.jit(jax.vmap(one_eval), in_shardings=(rep, rep, bsh, bsh, bsh),
                     out_shardings=(rep, rep))
  return train, evaluate


def init_opt_state(optimizer: optax.GradientTransformation, params):
  """Per-replica optimizer states, stacked like ``params``."""
  return jax.vmap(optimizer.init)(params)


# --------------------------------------------------------------------------------------------
# Plots


def plt():
  """matplotlib.pyplot with the Agg backend."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as pyplot

  return pyplot


def plot_band(ax, x, ys_SN, label: str, color=None, marker: str | None = None,
              errorbars: bool = False, **kw):
  """Mean over replicas (axis 0) as a line, +-1 std as a shaded band (or error bars)."""
  m, s = mean_std(ys_SN, axis=0)
  x = np.asarray(x)
  if errorbars:
    return ax.errorbar(x, m, yerr=s, label=label, color=color, marker=marker or "o",
                       capsize=3, **kw)
  (line,) = ax.plot(x, m, label=label, color=color, marker=marker, **kw)
  ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2, linewidth=0)
  return line
