"""The `rljax` command: help, presets, start-up validation that writes nothing, and
`--distributed` over two processes."""

import os
import random
import socket
import subprocess
import sys

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


def _free_slurm_job_id() -> int:
  """A SLURM_JOB_ID whose coordinator port (JAX: 61440 + id % 4096) is free here."""
  for _ in range(100):
    job_id = random.randrange(4096)
    with socket.socket() as s:
      try:
        s.bind(("127.0.0.1", 61440 + job_id))
      except OSError:
        continue
    return job_id
  raise RuntimeError("no free port in 61440-65535")


def test_distributed_flag_runs_one_job_over_two_processes_under_slurm(tmp_path):
  """`srun -n 2 rljax grpo --distributed ...`, emulated by SLURM's environment variables:
  the two CPU processes join one run (FSDP over both), and only rank 0 writes and reports."""
  run_dir = tmp_path / "run"
  args = ["grpo", "--distributed", "--run-dir", str(run_dir), "--model.d-model", "16",
          "--model.num-layers", "1", "--model.num-heads", "2", "--model.num-kv-heads", "2",
          "--model.mlp-dim", "32", "--sft.steps", "2", "--sft.batch-size", "4", "--grpo.steps",
          "2", "--grpo.prompts-per-step", "2", "--grpo.group-size", "2",
          "--grpo.max-new-tokens", "12", "--task.num-eval", "4", "--eval.batch-size", "4",
          "--log.no-progress", "--mesh.data", "1", "--mesh.fsdp", "-1"]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
             SLURM_JOB_ID=str(_free_slurm_job_id()), SLURM_STEP_NODELIST="localhost",
             SLURM_NTASKS="2")
  procs = [subprocess.Popen([sys.executable, "-m", "rljax.cli", *args],
                            env=dict(env, SLURM_PROCID=str(i), SLURM_LOCALID=str(i)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
  outs = [p.communicate(timeout=600)[0].decode() for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  assert "GRPO held-out" in outs[0] and "GRPO held-out" not in outs[1]
  phases = [line.split('"phase": "')[1].split('"')[0]
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
  assert phases == ["sft", "sft", "grpo", "grpo"]  # every step once, from rank 0
  assert (run_dir / "config.json").exists() and (run_dir / "eval.json").exists()
