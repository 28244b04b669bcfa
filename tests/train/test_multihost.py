"""Many hosts: the trainers under multi-controller JAX (``jax.distributed.initialize``).

Two CPU processes with one device each (collectives over gloo) run GRPO on an FSDP mesh, PPO
on a tensor-parallel mesh and DPO on a data-parallel mesh, each with an SFT warm start,
held-out evaluation, checkpoints and logging, into shared run folders (GRPO stops after two
steps and is resumed for a third). They must end with bitwise the parameters and metrics of
one process driving two devices, and write each file once. The checkpoints, written by two
processes, must load in this 8-device process.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np

from rljax.train import _loops

CHILD = textwrap.dedent('''
  import sys
  import jax
  out, pid, nproc, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
  if nproc > 1:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=nproc,
                               process_id=pid)
  assert jax.process_count() == nproc and jax.device_count() == 2, jax.devices()
  from rljax.train import (GRPOJob, PPOJob, DPOJob, ModelSpec, TaskSpec, SFTConfig, GRPOConfig,
                           PPOConfig, DPOConfig, OptimConfig, MeshConfig, CheckpointConfig,
                           LogConfig)
  from rljax.train import _loops

  lr = OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant")
  common = dict(
      seed=3, model=ModelSpec(d_model=16, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=32),
      task=TaskSpec(difficulty=("k=1", "template=compact"), num_eval=4, max_prompt_len=32,
                    max_answer_len=20),
      sft=SFTConfig(steps=2, batch_size=4), sft_optim=lr, optim=lr,
      checkpoint=CheckpointConfig(every=2, keep=2),
      log=LogConfig(progress=True, tensorboard=True, plot=True))
  grpo = lambda steps, resume: _loops.run_grpo(GRPOJob(
      **common, run_dir=f"{out}/grpo", resume=resume, mesh=MeshConfig(data=1, fsdp=-1),
      grpo=GRPOConfig(steps=steps, prompts_per_step=2, group_size=2, max_new_tokens=12,
                      epochs=2, kernel_impl="dense")))
  if nproc > 1:  # two steps, then resumed from the step-2 checkpoint for a third
    grpo(2, False)
    grpo(3, True)
  else:
    grpo(3, False)
  _loops.run_ppo(PPOJob(
      **common, run_dir=f"{out}/ppo", mesh=MeshConfig(data=1, tensor=-1),
      ppo=PPOConfig(steps=2, prompts_per_step=4, max_new_tokens=12, kl_coef=0.1)))
  _loops.run_dpo(DPOJob(
      **common, run_dir=f"{out}/dpo", mesh=MeshConfig(data=-1),
      dpo=DPOConfig(steps=2, batch_size=2, num_pairs=4, samples_per_prompt=2)))
''')

PHASES = ("grpo", "ppo", "dpo")
TIMING = {"time", "step_time", "tokens_per_s", "rollout_time"}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(script, out, pid, nproc, port, devices):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return subprocess.Popen([sys.executable, str(script), str(out), str(pid), str(nproc), str(port)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc) -> str:
  out, _ = proc.communicate(timeout=900)
  text = out.decode()
  assert proc.returncode == 0, text[-4000:]
  return text


def _params(run_dir):
  _, _, _, params, _ = _loops.load_run(str(run_dir))
  return {jax.tree_util.keystr(p): np.asarray(x)
          for p, x in jax.tree_util.tree_flatten_with_path(params)[0]}


def _metrics(run_dir):
  lines = (run_dir / "metrics.jsonl").read_text().splitlines()
  return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def test_two_processes_equal_one_process_with_two_devices(tmp_path):
  script = tmp_path / "child.py"
  script.write_text(CHILD)
  port = _free_port()
  procs = [_start(script, tmp_path / "multi", i, 2, port, devices=1) for i in range(2)]
  logs = [_finish(p) for p in procs]
  _finish(_start(script, tmp_path / "single", 0, 1, 0, devices=2))
  # Only process 0 shows progress bars (tqdm writes "it/s" or "s/it").
  assert "it/s" in logs[0] or "s/it" in logs[0]
  assert "it/s" not in logs[1] and "s/it" not in logs[1]
  for phase in PHASES:
    single, multi = tmp_path / "single" / phase, tmp_path / "multi" / phase
    a, b = _params(single), _params(multi)
    assert a and sorted(a) == sorted(b)
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=f"{phase} {k}")
    ma, mb = _metrics(single), _metrics(multi)
    assert len(ma) > 2 and ma == mb, phase  # every record once, the same numbers
    assert json.loads((single / "eval.json").read_text()) == json.loads(
        (multi / "eval.json").read_text())
    # One event file per phase logged, from process 0 alone (the resumed GRPO adds one).
    assert len(os.listdir(multi / "tb")) == len(os.listdir(single / "tb")) + (phase == "grpo")
    assert (multi / "curves.png").exists()
