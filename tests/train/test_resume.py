"""Resume: a run SIGKILLed between checkpoints and resumed ends bitwise equal to an
uninterrupted run (SFT warm start + GRPO, tiny model, subprocesses); a resumed run reuses a
held-out result only when it still holds."""

import dataclasses
import os
import subprocess
import sys
import textwrap
import types

import numpy as np

from rljax.train import EvalConfig, GRPOConfig, GRPOJob, SFTConfig, _loops

CHILD = textwrap.dedent('''
  import os, signal, sys
  import numpy as np
  import jax
  from rljax.train import (GRPOJob, ModelSpec, TaskSpec, SFTConfig, GRPOConfig, OptimConfig,
                           MeshConfig, CheckpointConfig, LogConfig)
  from rljax.train import _loops

  run_dir, kill_at, resume, out = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
  if kill_at > 0:  # die (SIGKILL, no clean-up) right after logging GRPO step kill_at
    orig = _loops.MetricsLogger.log
    def log(self, step, metrics, **kw):
      vals = orig(self, step, metrics, **kw)
      if self.phase == "grpo" and step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
      return vals
    _loops.MetricsLogger.log = log
  job = GRPOJob(
      run_dir=run_dir, resume=resume, seed=3,
      model=ModelSpec(d_model=16, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=32),
      task=TaskSpec(difficulty=("k=1", "template=compact"), num_eval=0, max_prompt_len=32,
                    max_answer_len=20),
      sft=SFTConfig(steps=2, batch_size=4),
      sft_optim=OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant"),
      optim=OptimConfig(learning_rate=1e-2, warmup_steps=0, schedule="constant"),
      grpo=GRPOConfig(steps=5, prompts_per_step=2, group_size=2, max_new_tokens=12, epochs=2,
                      minibatches=2, advantage_scale="none", kernel_impl="dense"),
      mesh=MeshConfig(data=1), checkpoint=CheckpointConfig(every=2, keep=2),
      log=LogConfig(progress=False, tensorboard=False, plot=False))
  _loops.run_grpo(job)
  _, _, _, params, _ = _loops.load_run(run_dir)
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  np.savez(out, **{jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves})
''')


def _run(tmp_path, name, kill_at=0, resume=False):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  script = tmp_path / "child.py"
  script.write_text(CHILD)
  return subprocess.Popen(
      [sys.executable, str(script), str(tmp_path / name), str(kill_at), "1" if resume else "0",
       str(tmp_path / f"{name}.npz")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_between_checkpoints_then_resume_is_bitwise_identical(tmp_path):
  full, killed = _run(tmp_path, "full"), _run(tmp_path, "killed", kill_at=3)
  out_full, _ = full.communicate(timeout=600)
  assert full.returncode == 0, out_full.decode()[-3000:]
  out_killed, _ = killed.communicate(timeout=600)
  assert killed.returncode == -9, out_killed.decode()[-3000:]
  ck = tmp_path / "killed" / "checkpoints" / "grpo"
  assert sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) == [2]
  assert not (tmp_path / "killed.npz").exists()
  resumed = _run(tmp_path, "killed", resume=True)
  out_resumed, _ = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, out_resumed.decode()[-3000:]
  a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "killed.npz")
  assert sorted(a.files) == sorted(b.files) and a.files
  for k in a.files:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  # The resumed run continued the metrics log instead of restarting it.
  steps = [line for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
           if '"phase": "grpo"' in line]
  assert len(steps) == 3 + 3  # steps 1-3 before the kill, 3-5 after resuming from step 2


def test_resume_reuses_a_held_out_result_only_for_the_same_steps_and_eval_settings(tmp_path):
  job = GRPOJob(run_dir=str(tmp_path), resume=True, sft=SFTConfig(steps=10),
                grpo=GRPOConfig(steps=5))
  env = types.SimpleNamespace(job=job)
  _loops._record_eval(env, "before", {"accuracy": 0.25})
  _loops._record_eval(env, "after", {"accuracy": 0.5})
  assert _loops._load_eval(env, "before") == {"accuracy": 0.25}
  assert _loops._load_eval(env, "after") == {"accuracy": 0.5}
  # Resumed with more GRPO steps: the warm start's result holds, the final one is stale.
  env.job = dataclasses.replace(job, grpo=GRPOConfig(steps=8))
  assert _loops._load_eval(env, "before") == {"accuracy": 0.25}
  assert _loops._load_eval(env, "after") is None
  # Other evaluation settings or a longer warm start: both are measured again.
  env.job = dataclasses.replace(job, eval=EvalConfig(num_samples=4, temperature=1.0, ks=(1, 4)))
  assert _loops._load_eval(env, "before") is None and _loops._load_eval(env, "after") is None
  env.job = dataclasses.replace(job, sft=SFTConfig(steps=20))
  assert _loops._load_eval(env, "before") is None
  # Without --resume nothing is reused.
  env.job = dataclasses.replace(job, resume=False)
  assert _loops._load_eval(env, "after") is None
