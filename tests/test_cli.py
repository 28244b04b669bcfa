"""The `rljax` command: help, presets, and start-up validation that writes nothing."""

import pytest

from rljax import cli, presets
from rljax.train import GRPOJob


def test_top_level_usage(capsys):
  assert cli.main([]) == 0
  out = capsys.readouterr().out
  for cmd in ("sft", "grpo", "ppo", "dpo", "eval", "export", "cpu-tiny", "gpu-0.5b"):
    assert cmd in out


def test_grpo_help_lists_fields_with_defaults(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["grpo", "--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  for flag in ("--grpo.eps-high", "--grpo.group-size", "--grpo.entropy-top-rho",
               "--grpo.dynamic-sampling", "--sft.steps", "--optim.learning-rate", "--mesh.fsdp",
               "--checkpoint.every", "--resume", "--task.name"):
    assert flag in out, flag
  assert "0.28" in out  # a default is shown
  assert "clip-higher" in out  # a field doc is shown


def test_preset_changes_defaults():
  tiny, big = presets.preset("cpu-tiny", "grpo"), presets.preset("gpu-0.5b", "grpo")
  assert isinstance(tiny, GRPOJob) and isinstance(big, GRPOJob)
  assert big.model.d_model == 896 and big.model.num_layers == 24
  assert tiny.model.d_model < big.model.d_model
  with pytest.raises(ValueError, match="^preset"):
    presets.preset("nope", "grpo")


@pytest.mark.parametrize(
  "args, field",
  [
    (["--grpo.group-size", "1"], "grpo.group_size"),
    (["--task.name", "no_such_task"], "task.name"),
    (["--grpo.prompts-per-step", "3", "--grpo.group-size", "3", "--mesh.data", "8"],
     "grpo.prompts_per_step"),
    (["--sft.batch-size", "12", "--mesh.data", "8"], "sft.batch_size"),
  ],
)
def test_invalid_config_fails_before_writing(tmp_path, capsys, args, field):
  run_dir = tmp_path / "run"
  try:
    code = cli.main(["grpo", "--run-dir", str(run_dir), *args])
  except SystemExit as e:  # tyro reports a field that fails __post_init__ and exits 2
    code = e.code
  assert code == 2
  assert field in capsys.readouterr().err.replace("\n", " ")
  assert not run_dir.exists()


def test_unknown_command(capsys):
  assert cli.main(["train"]) == 2
  assert "unknown command" in capsys.readouterr().err
