"""Device mesh and the sharding rules table (axes "data", "fsdp", "tensor").

Parameters are placed by a small rules table keyed on their path and shape:

* tensor parallelism: a regex on the parameter path names the dimension split over
  "tensor" (the output dim of q/k/v/gate/up projections, the input dim of output/down
  projections, the vocabulary dim of the embedding);
* FSDP: the largest remaining dimension divisible by the "fsdp" axis size is split over
  "fsdp" (so each device holds about 1/fsdp of the parameter and optimizer-state bytes);
* anything that does not divide evenly stays replicated on that axis.

Batches are split on their leading (row) dimension over ("data", "fsdp").

Many hosts (multi-controller JAX, after ``jax.distributed.initialize()``): every process
runs the same program on the same host data (the data streams and PRNG keys are functions
of the seed and the step), so a host batch becomes a global array by each process placing
its own devices' rows (:func:`shard_batch`); arrays are read back on the host with
:func:`to_host`, and only the primary process (index 0) writes files
(:func:`is_primary`, :func:`sync_processes`).
"""

from __future__ import annotations

import dataclasses
import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rljax.train._config import MeshConfig

AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShardingRules:
  """(path regex, dimension) pairs: the first match puts that dimension on "tensor"."""

  tensor: tuple[tuple[str, int], ...] = (
      (r"(q_proj|k_proj|v_proj|wq|wk|wv|qkv|gate|up_proj|w1|w3|in_proj)", -1),
      (r"(o_proj|out_proj|down|wo|w2|out)", 0),
      (r"(embed|wte|tok)", 0),
      (r"(lm_head|head)", -1),
  )
  fsdp_min_size: int = 256  # leaves with fewer elements stay replicated (norms, scalars)


def make_mesh(cfg: MeshConfig, devices=None) -> Mesh:
  """A ``Mesh`` with axes ("data", "fsdp", "tensor") over ``devices`` (default: all)."""
  devices = list(jax.devices() if devices is None else devices)
  s = cfg.shape(len(devices))
  arr = np.asarray(devices, dtype=object).reshape(s["data"], s["fsdp"], s["tensor"])
  return Mesh(arr, AXES)


def partition_spec(path: str, shape: tuple[int, ...], mesh: Mesh,
                   rules: ShardingRules | None = None) -> PartitionSpec:
  """The ``PartitionSpec`` of one leaf given its path string and shape."""
  rules = rules or ShardingRules()
  ndim = len(shape)
  axes: list[str | None] = [None] * ndim
  if ndim == 0 or int(np.prod(shape)) < rules.fsdp_min_size:
    return PartitionSpec()
  tsize, fsize = mesh.shape["tensor"], mesh.shape["fsdp"]
  if tsize > 1 and ndim >= 2:
    for pattern, dim in rules.tensor:
      if re.search(pattern, path, re.IGNORECASE):
        d = dim % ndim
        if shape[d] % tsize == 0:
          axes[d] = "tensor"
        break
  if fsize > 1:
    order = sorted(range(ndim), key=lambda d: -shape[d])
    for d in order:
      if axes[d] is None and shape[d] % fsize == 0:
        axes[d] = "fsdp"
        break
  return PartitionSpec(*axes)


def tree_shardings(tree, mesh: Mesh, rules: ShardingRules | None = None):
  """``NamedSharding`` for every array leaf of ``tree`` (params, optimizer state, ...)."""
  def leaf(path, x):
    shape = tuple(getattr(x, "shape", ()))
    # nnx Variables end their path in "value".
    name = jax.tree_util.keystr(path, simple=True, separator="/").removesuffix("/value")
    return NamedSharding(mesh, partition_spec(name, shape, mesh, rules))
  return jax.tree_util.tree_map_with_path(leaf, tree)


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Rows over ("data", "fsdp"), the other ``ndim - 1`` dims replicated."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def batch_shardings(batch, mesh: Mesh):
  """``batch_sharding`` for every leaf of a batch pytree (scalars replicated)."""
  def leaf(x):
    nd = np.ndim(x)
    return batch_sharding(mesh, nd) if nd else NamedSharding(mesh, PartitionSpec())
  return jax.tree.map(leaf, batch)


def shard_batch(batch, mesh: Mesh):
  """A host batch pytree as global ``jax.Array`` leaves placed by :func:`batch_shardings`.

  Each process fills its addressable devices' shards from its own copy of ``batch``, which
  must be the same on every process. With one process this equals
  ``jax.device_put(batch, batch_shardings(batch, mesh))``; with several it is what a jitted
  step needs, since ``jit`` refuses host (numpy) inputs with a non-replicated sharding there.
  """
  def leaf(x, sh):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sh, lambda idx: x[idx])
  return jax.tree.map(leaf, batch, batch_shardings(batch, mesh))


def to_host(x) -> np.ndarray:
  """``np.asarray(x)`` of a possibly multi-process array: the whole value on every process.

  An array with shards on other processes' devices is gathered
  (``multihost_utils.process_allgather``, a collective every process must call).
  """
  if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def is_primary() -> bool:
  """Whether this is the process that writes files (process 0; always true with one)."""
  return jax.process_index() == 0


def sync_processes(name: str) -> None:
  """A barrier across processes (no-op with one): nobody passes until all reach it."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def data_parallel_size(mesh: Mesh) -> int:
  """Number of batch shards (data * fsdp)."""
  return mesh.shape["data"] * mesh.shape["fsdp"]


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())
