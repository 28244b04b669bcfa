"""Mesh and rules table: FSDP puts about 1/8 of the parameter bytes on each device."""

import jax
import numpy as np
from jax.sharding import PartitionSpec

from rljax.train import (
  MeshConfig,
  ModelSpec,
  OptimConfig,
  batch_shardings,
  make_mesh,
  make_optimizer,
  partition_spec,
  shard_batch,
  to_host,
)
from rljax.train._loops import place_state
from rljax.train._policy import TrainState, build_model, split


def _bytes_per_device(tree):
  per = {}
  for x in jax.tree.leaves(tree):
    for sh in x.addressable_shards:
      per[sh.device] = per.get(sh.device, 0) + sh.data.nbytes
  return per


def test_fsdp_puts_an_eighth_of_the_bytes_on_each_device():
  spec = ModelSpec(d_model=64, num_layers=2, num_heads=4, num_kv_heads=4, mlp_dim=128)
  _, params, _ = split(build_model(spec, 64, seed=0))
  opt = make_optimizer(OptimConfig())
  mesh = make_mesh(MeshConfig(data=1, fsdp=8))
  state = place_state(TrainState.create(params, opt, 0), mesh)
  total = sum(x.nbytes for x in jax.tree.leaves(state.params))
  per = _bytes_per_device(state.params)
  assert len(per) == 8
  for b in per.values():
    assert abs(b / total - 1 / 8) < 0.02, (b, total)
  per_opt = _bytes_per_device(state.opt_state)
  total_opt = sum(x.nbytes for x in jax.tree.leaves(state.opt_state))
  assert max(per_opt.values()) / total_opt < 1 / 8 + 0.02


def test_data_parallel_replicates_parameters():
  spec = ModelSpec(d_model=32, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=64)
  _, params, _ = split(build_model(spec, 32, seed=0))
  mesh = make_mesh(MeshConfig(data=-1))
  assert dict(mesh.shape) == {"data": 8, "fsdp": 1, "tensor": 1}
  state = place_state(TrainState.create(params, make_optimizer(OptimConfig()), 0), mesh)
  for x in jax.tree.leaves(state.params):
    assert x.sharding.is_fully_replicated


def test_rules_table():
  mesh = make_mesh(MeshConfig(data=2, fsdp=2, tensor=2))
  assert partition_spec("layers/0/attn/q_proj/kernel", (64, 128), mesh) == \
      PartitionSpec("fsdp", "tensor")
  assert partition_spec("layers/0/attn/o_proj/kernel", (128, 64), mesh) == \
      PartitionSpec("tensor", "fsdp")
  assert partition_spec("embed/embedding", (100, 64), mesh) == PartitionSpec("tensor", "fsdp")
  assert partition_spec("embed/embedding", (99, 64), mesh) == PartitionSpec(None, "fsdp")
  assert partition_spec("layers/0/mlp/down_proj/kernel", (128, 64), mesh) == \
      PartitionSpec("tensor", "fsdp")
  assert partition_spec("layers/0/mlp/up_proj/kernel", (64, 128), mesh) == \
      PartitionSpec("fsdp", "tensor")
  assert partition_spec("final_norm/scale", (64,), mesh) == PartitionSpec()
  assert partition_spec("count", (), mesh) == PartitionSpec()
  # A dimension that does not divide stays replicated.
  assert partition_spec("mlp/up/kernel", (63, 33), mesh) == PartitionSpec(None, None)
  np.testing.assert_equal(mesh.devices.shape, (2, 2, 2))


def test_shard_batch_places_rows_like_device_put_and_to_host_reads_them_back():
  mesh = make_mesh(MeshConfig(data=2, fsdp=2, tensor=2))
  batch = {"tokens": np.arange(8 * 3, dtype=np.int32).reshape(8, 3),
           "advantages": np.linspace(-1, 1, 8, dtype=np.float32), "scale": np.float32(2.0)}
  got = shard_batch(batch, mesh)
  want = jax.device_put(batch, batch_shardings(batch, mesh))
  for k in batch:
    assert got[k].sharding == want[k].sharding, k
    np.testing.assert_array_equal(to_host(got[k]), batch[k])
  # Rows over ("data", "fsdp"): each of the 4 row shards holds 2 rows, on 2 devices (tensor).
  assert {s.data.shape for s in got["tokens"].addressable_shards} == {(2, 3)}
  assert got["scale"].sharding.is_fully_replicated
  assert isinstance(to_host(got["tokens"]), np.ndarray)


def test_trainer_rollouts_shard_their_rows_only_where_they_split():
  import types

  from rljax.train._loops import rows_mesh

  env = types.SimpleNamespace(mesh=make_mesh(MeshConfig(data=4, fsdp=2)))  # dp = 8
  assert rows_mesh(env, 16) is env.mesh and rows_mesh(env, 64) is env.mesh
  assert rows_mesh(env, 12) is None  # 12 prompts do not split 8 ways: every device samples all
  tensor_only = types.SimpleNamespace(mesh=make_mesh(MeshConfig(data=1, tensor=8)))
  assert rows_mesh(tensor_only, 16) is None  # dp = 1: the rows stay whole
