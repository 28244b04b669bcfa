"""Config validation: every bad value fails at construction with a message naming the field."""

import dataclasses

import pytest

from rljax.train import (
  CheckpointConfig,
  DPOConfig,
  EvalConfig,
  GRPOConfig,
  GRPOJob,
  MeshConfig,
  ModelSpec,
  OptimConfig,
  PPOConfig,
  SFTConfig,
  TaskSpec,
)
from rljax.train._loops import validate_job


@pytest.mark.parametrize(
  "cls, kwargs, field",
  [
    (GRPOConfig, {"group_size": 1}, "grpo.group_size"),
    (GRPOConfig, {"group_size": 1, "advantage_scale": "none",
                  "advantage_baseline": "leave_one_out"}, "grpo.group_size"),
    (GRPOConfig, {"entropy_top_rho": 0.0}, "grpo.entropy_top_rho"),
    (GRPOConfig, {"dual_clip": 0.5}, "grpo.dual_clip"),
    (GRPOConfig, {"eps_low": 1.0}, "grpo.eps_low"),
    (GRPOConfig, {"top_p": 1.5}, "grpo.top_p"),
    (GRPOConfig, {"overlong_max_len": 4, "overlong_cache_len": 8}, "grpo.overlong_max_len"),
    (GRPOConfig, {"prompts_per_step": 3, "group_size": 3, "minibatches": 2}, "grpo.minibatches"),
    (GRPOConfig, {"max_sampling_rounds": 0}, "grpo.max_sampling_rounds"),
    (PPOConfig, {"lam": 1.5}, "ppo.lam"),
    (PPOConfig, {"prompts_per_step": 6, "minibatches": 4}, "ppo.minibatches"),
    (DPOConfig, {"label_smoothing": 0.5}, "dpo.label_smoothing"),
    (DPOConfig, {"beta": 0.0}, "dpo.beta"),
    (SFTConfig, {"batch_size": 0}, "sft.batch_size"),
    (OptimConfig, {"learning_rate": -1.0}, "optim.learning_rate"),
    (OptimConfig, {"b2": 1.0}, "optim.b2"),
    (OptimConfig, {"min_lr_ratio": 2.0}, "optim.min_lr_ratio"),
    (MeshConfig, {"data": -1, "fsdp": -1}, "mesh"),
    (MeshConfig, {"tensor": 0}, "mesh.tensor"),
    (CheckpointConfig, {"keep": 0}, "checkpoint.keep"),
    (ModelSpec, {"num_heads": 4, "num_kv_heads": 3}, "model.num_kv_heads"),
    (ModelSpec, {"num_layers": 2, "mixer": "attention,deltanet,attention"}, "model.mixer"),
    (TaskSpec, {"difficulty": ("k3",)}, "task.difficulty"),
    (EvalConfig, {"num_samples": 4, "ks": (8,)}, "eval.ks"),
  ],
)
def test_invalid_value_names_the_field(cls, kwargs, field):
  with pytest.raises(ValueError, match=f"^{field.replace('.', '[.]')}"):
    cls(**kwargs)


def test_configs_are_frozen_and_kw_only():
  cfg = GRPOConfig()
  with pytest.raises(dataclasses.FrozenInstanceError):
    cfg.group_size = 4  # type: ignore[misc]
  with pytest.raises(TypeError):
    GRPOConfig(8)  # type: ignore[misc]


def test_group_size_one_allowed_without_std_scaling():
  assert GRPOConfig(group_size=1, advantage_scale="none").rows == 16


def test_mesh_shape_resolves_the_free_axis():
  assert MeshConfig(data=-1, fsdp=2).shape(8) == {"data": 4, "fsdp": 2, "tensor": 1}
  with pytest.raises(ValueError, match="^mesh.data"):
    MeshConfig(data=-1, fsdp=3).shape(8)
  with pytest.raises(ValueError, match="^mesh"):
    MeshConfig(data=2, fsdp=2, tensor=1).shape(8)


def test_difficulty_parsing():
  spec = TaskSpec(difficulty=("k=2", "template=symbolic", "k_range=1,3"))
  assert spec.difficulty_kwargs() == {"k": 2, "template": "symbolic", "k_range": (1, 3)}


def test_batch_not_divisible_by_mesh(tmp_path):
  job = GRPOJob(run_dir=str(tmp_path / "run"),
                grpo=GRPOConfig(prompts_per_step=3, group_size=3))
  with pytest.raises(ValueError, match=r"^grpo.prompts_per_step \* grpo.group_size"):
    validate_job(job, num_devices=8)
  job = GRPOJob(run_dir=str(tmp_path / "run"), sft=SFTConfig(batch_size=12))
  with pytest.raises(ValueError, match="^sft.batch_size"):
    validate_job(job, num_devices=8)
  assert not (tmp_path / "run").exists()


def test_unknown_task(tmp_path):
  job = GRPOJob(run_dir=str(tmp_path / "run"), task=TaskSpec(name="no_such_task"))
  with pytest.raises(ValueError, match="^task.name"):
    validate_job(job, num_devices=1)
  assert not (tmp_path / "run").exists()


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "metrics.jsonl").write_text("")
  with pytest.raises(ValueError, match="^run_dir"):
    validate_job(GRPOJob(run_dir=str(tmp_path / "run")), num_devices=1)
  validate_job(GRPOJob(run_dir=str(tmp_path / "run"), resume=True), num_devices=1)
