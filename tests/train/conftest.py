"""Shared tiny fixtures for the trainer tests."""

import pytest

from rljax.train import ModelSpec


@pytest.fixture(scope="session")
def tiny_spec() -> ModelSpec:
  return ModelSpec(d_model=16, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=32)
