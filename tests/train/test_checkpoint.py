"""Orbax checkpoints: round trip, keep-last-K, fallback from a corrupt or partial latest."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.train import CheckpointConfig, Checkpointer, OptimConfig, make_optimizer
from rljax.train._policy import TrainState


def _state(seed: int) -> TrainState:
  k = jax.random.key(seed)
  params = {"w": jax.random.normal(k, (4, 3)), "norm": {"scale": jnp.ones((3,))}}
  return TrainState.create(params, make_optimizer(OptimConfig()), seed)


def _assert_equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_round_trip_and_keep_last_k(tmp_path):
  ck = Checkpointer(str(tmp_path / "ck"), CheckpointConfig(every=1, keep=2))
  states = {s: _state(s) for s in (1, 2, 3)}
  for s, st in states.items():
    ck.save(s, st, {"data_position": s, "phase": "sft"})
  assert ck.steps() == [2, 3]
  got, meta, step = ck.restore(_state(0))
  assert step == 3 and meta == {"data_position": 3, "phase": "sft"}
  _assert_equal(got, states[3])
  assert got.rng.dtype == jnp.uint32
  ck.close()


def test_corrupt_latest_falls_back_with_warning(tmp_path):
  d = str(tmp_path / "ck")
  ck = Checkpointer(d, CheckpointConfig(every=1, keep=3))
  ck.save(1, _state(1), {"data_position": 1})
  ck.save(2, _state(2), {"data_position": 2})
  ck.close()
  # Damage every data file of the latest step's state item.
  for root, _, files in os.walk(os.path.join(d, "2", "state")):
    for f in files:
      with open(os.path.join(root, f), "wb") as fh:
        fh.write(b"\x00garbage")
  with pytest.warns(UserWarning, match="checkpoint 2 .* corrupt or partial"):
    got, meta, step = Checkpointer(d).restore(_state(0))
  assert step == 1 and meta["data_position"] == 1
  _assert_equal(got, _state(1))


def test_partial_latest_is_ignored_or_falls_back(tmp_path):
  d = str(tmp_path / "ck")
  ck = Checkpointer(d, CheckpointConfig(every=1, keep=3))
  ck.save(1, _state(1), {"data_position": 1})
  ck.save(2, _state(2), {"data_position": 2})
  ck.close()
  shutil.rmtree(os.path.join(d, "2", "state"))  # a half-written step: one item missing
  with pytest.warns(UserWarning, match="falling back"):
    got, _, step = Checkpointer(d).restore(_state(0))
  assert step == 1
  _assert_equal(got, _state(1))


def test_empty_directory_restores_nothing(tmp_path):
  assert Checkpointer(str(tmp_path / "none")).restore(_state(0)) is None
  assert not (tmp_path / "none").exists()


def test_should_save_every_n():
  ck = Checkpointer("/nonexistent", CheckpointConfig(every=3, keep=1))
  assert [s for s in range(1, 10) if ck.should_save(s)] == [3, 6, 9]
  assert not Checkpointer("/x", CheckpointConfig(every=0)).should_save(5)
