"""Shared harness of the RL studies: warm-start SFT checkpoints, RL arms, pass@k evaluation.

A study is a set of *arms* (config overrides of one base RL job) trained from one supervised
warm start. Everything goes through the public ``rljax.train`` job API (``SFTJob``,
``GRPOJob``, ``PPOJob`` run by ``run_sft`` / ``run_grpo`` / ``run_ppo``) and ``rljax.eval``:

* :func:`sft_checkpoint` trains (or reuses) a supervised checkpoint. Its run folder is keyed
  by a hash of the model / task / SFT config and the seed, so several studies (and every arm
  of one study) share one checkpoint instead of re-training it. Each finished run also stores
  :func:`task_fingerprint` (what the task code produced), and a run whose fingerprint differs
  from the current code's is trained again rather than reused. A run that starts from another
  (``model.init_from``) also stores a hash of that parent's record, and is trained again when
  the parent was (a chain of chunks keeps the parent's path, so the key alone cannot tell).
* :func:`grpo_arm` / :func:`ppo_arm` run one RL arm from a checkpoint (``model.init_from``),
  reused on the same terms.
* :func:`sample_counts` draws n completions per problem and counts correct ones;
  :func:`pass_curve` turns counts into the unbiased pass@k (Chen et al. 2021) averaged over
  problems.
* :func:`token_entropies` gives the policy's per-token entropy on its own samples.

Run folders (checkpoints, metrics.jsonl) go under ``--workdir`` (default ``runs/experiments``,
git-ignored); only ``experiments/results/<study>/`` is committed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

from rljax.train import (
  CheckpointConfig,
  EvalConfig,
  GRPOConfig,
  GRPOJob,
  LogConfig,
  ModelSpec,
  OptimConfig,
  PPOConfig,
  PPOJob,
  SFTConfig,
  SFTJob,
  TaskSpec,
  read_metrics,
)

DEFAULT_WORKDIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "runs", "experiments")

# --------------------------------------------------------------------------------------------
# Presets


@dataclasses.dataclass(frozen=True, kw_only=True)
class RLPreset:
  """Everything an RL study varies with the machine: model, task, budgets, evaluation."""

  model: ModelSpec
  task: TaskSpec
  sft: SFTConfig
  sft_optim: OptimConfig
  optim: OptimConfig  # the RL optimizer
  grpo: GRPOConfig
  ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
  seeds: tuple[int, ...] = (0,)  # RL seeds (one RL run per seed and arm)
  sft_seed: int = 0  # the warm start every arm and seed starts from (the "base model")
  eval_problems: int = 32  # held-out problems per evaluation
  eval_samples: int = 8  # n samples per problem (pass@k for k <= n)
  eval_temperature: float = 1.0
  eval_batch: int = 16  # prompts per generation call
  max_new_tokens: int = 64  # generation cap at evaluation

  def __post_init__(self):
    if not self.seeds:
      raise ValueError("seeds: give at least one seed")
    for n in ("eval_problems", "eval_samples", "eval_batch", "max_new_tokens"):
      if getattr(self, n) <= 0:
        raise ValueError(f"{n}: must be > 0, got {getattr(self, n)}")


def arithmetic_task(k: str, *, num_eval: int = 64, max_prompt_len: int = 48,
                    max_answer_len: int = 64, template: str = "compact") -> TaskSpec:
  """An arithmetic_dag TaskSpec; ``k`` is ``"2"`` or an inclusive range ``"1,3"``."""
  return TaskSpec(name="arithmetic_dag", difficulty=(f"k={k}", f"template={template}"),
                  num_eval=num_eval, max_prompt_len=max_prompt_len,
                  max_answer_len=max_answer_len)


TINY_MODEL = ModelSpec(d_model=32, num_layers=1, num_heads=2, num_kv_heads=2, mlp_dim=64)
CPU_MODEL = ModelSpec(d_model=64, num_layers=2, num_heads=4, num_kv_heads=4, mlp_dim=256)
# The GRPO optimizer of the cpu-tiny job (rljax/presets.py, README "Train a policy"): lr 1e-3
# collapses these tiny policies within ~50 steps; 2e-4 with groups of 16 does not. difficulty
# and swe_rl use it.
TUNED_RL_OPTIM = OptimConfig(learning_rate=2e-4, warmup_steps=5, schedule="constant")
# The shared arithmetic cpu preset's RL optimizer, chosen on its 3000-step warm start (one seed,
# 64 held-out problems x 16 samples, answer-only pass@k, before the studies read verified
# pass@k; base pass@1 0.360, pass@16 0.938): lr 1e-3 x 30 steps lowered pass@1 (-0.016 +- 0.048
# over two seeds); 1e-4 / 2e-4 x 60 steps with groups of 16 gained +0.015 / +0.013; 5e-4 x 60
# steps of 16 x 8 gained +0.028 (pass@16 -0.047) in 69 s.
SHARED_RL_OPTIM = OptimConfig(learning_rate=5e-4, warmup_steps=5, schedule="constant")
# A stronger warm start does not make RL lift these policies (pilot 2026-11-27, not adopted): the
# same 3000 steps at SFT lr 5e-3 (pad_multiple 16, 3.3 min) reach greedy accuracy 0.53 and
# verified pass@1 0.277 / pass@16 0.750 (64 problems x 16 samples); GRPO from it (16 x 8, one
# seed, 60 steps unless said) then gives verified pass@1 0.004 (lr 1e-3), 0.146 (5e-4), 0.249 /
# 0.273 (2e-4, seeds 0 / 1), 0.283 (1e-4); 120 steps at 1e-4 0.271 / 0.244 (pass@16 0.734 /
# 0.547); 200 steps 0.274 (2e-4), 0.308 (1e-4; training reward 0.345 -> 0.376). At this budget
# GRPO with the answer-only reward keeps or lowers verified pass@1 of a competent base.

# arithmetic_dag's answers are residues mod 10 (its default modulus): a well-formed uniform guess
# solves a problem with probability 1/10, so pass@k has a chance level of 1 - 0.9^k (0.97 at
# k = 32). The studies print it beside their pass@k tables.
ANSWER_VALUES = 10


def chance_pass(k: int, values: int = ANSWER_VALUES) -> float:
  """pass@k of a well-formed uniform guess among ``values`` answers: ``1 - (1 - 1/values)^k``."""
  return 1.0 - (1.0 - 1.0 / values) ** k


def chance_line(ks: Sequence[int]) -> str:
  """The README sentence giving the chance level of answer-only pass@k at each of ``ks``."""
  return (f"Chance level of answer-only pass@k (a well-formed uniform guess among the "
          f"{ANSWER_VALUES} residues): "
          + ", ".join(f"pass@{k} {chance_pass(k):.3f}" for k in ks)
          + "; a guess never passes the verified check.")


def minutes(seconds: float) -> str:
  """A wall time for a README: ``"12.3 min"``, or ``"42 s"`` under a minute (an invocation that
  reused its finished runs)."""
  return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def padding_note(preset: RLPreset) -> str:
  """The README sentence on bucketed padding (``SFTConfig`` / ``GRPOConfig.pad_multiple``), or
  ``""`` when batches keep the fixed maximal shapes."""
  m = preset.sft.pad_multiple or preset.grpo.pad_multiple
  if not m:
    return ""
  return (f" Batches (SFT and GRPO updates) are padded to the next multiple of {m} tokens of "
          f"their longest prompt and answer, at most {preset.task.max_prompt_len} + "
          f"{max(preset.task.max_answer_len, preset.grpo.max_new_tokens)}: the same training on "
          "fewer padded tokens.")


def early_verdict(preset_name: str, n_seeds: int, what: str = "table") -> str:
  """The verdict before any claim is read: the smoke preset's, or one seed's (no spread to read
  a difference against); ``""`` when the claims can be read."""
  if preset_name == "smoke":
    return "not yet run (smoke preset: plumbing check only; the numbers mean nothing)."
  if n_seeds == 1:
    return (f"inconclusive (one seed: no error bars; read the {what} against the sampling "
            "noise of the evaluation and rerun with more seeds).")
  return ""


def no_lift(best: float, base: float, spread: float) -> str:
  """The sentence for RL arms whose best pass@1 is within the seed spread of the base, else
  ``""``: comparisons between such arms compare policies that barely moved."""
  if best > base + spread:
    return ""
  return (f"No arm lifts pass@1 beyond the seed spread above the SFT base ({base:.3f}; best "
          f"arm {best:.3f})")


# The log-prob/entropy kernel of the gpu / tpu presets: "auto" (Pallas on GPU/TPU), 21.4 ms on
# an H100 against 25.1 ms for the chunked XLA path (bf16, N = 8192; README, kernels section).
ACCEL_KERNEL = "auto"
GPU_MODEL = ModelSpec(d_model=512, num_layers=8, num_heads=8, num_kv_heads=4, mlp_dim=2048,
                      dtype="bfloat16")


def arithmetic_preset(name: str) -> RLPreset:
  """The shared arithmetic_dag preset of the GRPO/DAPO studies (smoke | cpu | gpu | tpu).

  In-distribution problems have k in [1, 2] operations on CPU (k in [1, 4] on GPU / TPU),
  compact template, mod 10; the SFT warm start is the "base model" of the studies. On CPU it is
  3000 steps (5.5-8.5 minutes on 2 idle cores; greedy answer accuracy 0.39-0.41, verified
  pass@1 0.08-0.09): the earlier 400-step warm start on k = 1 sat at chance (pass@1 0.10),
  which no pass@k claim can be read against.
  """
  if name == "smoke":
    return RLPreset(
        model=TINY_MODEL, task=arithmetic_task("1", num_eval=8, max_prompt_len=40,
                                              max_answer_len=32),
        sft=SFTConfig(steps=4, batch_size=8),
        sft_optim=OptimConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=4),
        optim=OptimConfig(learning_rate=1e-3, warmup_steps=0, schedule="constant"),
        grpo=GRPOConfig(steps=2, prompts_per_step=2, group_size=4, max_new_tokens=32),
        ppo=PPOConfig(steps=2, prompts_per_step=8, max_new_tokens=32, epochs=1),
        seeds=(0,), eval_problems=4, eval_samples=4, eval_batch=4, max_new_tokens=32)
  if name == "cpu":
    return RLPreset(
        model=CPU_MODEL, task=arithmetic_task("1,2", num_eval=64, max_prompt_len=52,
                                             max_answer_len=64),
        sft=SFTConfig(steps=3000, batch_size=32),
        sft_optim=OptimConfig(learning_rate=1e-2, warmup_steps=20, decay_steps=3000,
                              min_lr_ratio=0.05),
        optim=SHARED_RL_OPTIM,
        grpo=GRPOConfig(steps=60, prompts_per_step=16, group_size=8, max_new_tokens=64),
        ppo=PPOConfig(steps=60, prompts_per_step=64, max_new_tokens=64),
        seeds=(0, 1, 2), eval_problems=64, eval_samples=16, eval_batch=16, max_new_tokens=64)
  if name in ("gpu", "tpu"):
    return RLPreset(
        model=GPU_MODEL, task=arithmetic_task("1,4", num_eval=256, max_prompt_len=96,
                                              max_answer_len=128),
        sft=SFTConfig(steps=3000, batch_size=128),
        sft_optim=OptimConfig(learning_rate=1e-3, warmup_steps=100, decay_steps=3000),
        optim=OptimConfig(learning_rate=1e-5, warmup_steps=5, schedule="constant"),
        grpo=GRPOConfig(steps=200, prompts_per_step=64, group_size=8, max_new_tokens=128,
                        kernel_impl=ACCEL_KERNEL),
        ppo=PPOConfig(steps=200, prompts_per_step=256, max_new_tokens=128, minibatches=4,
                      kernel_impl=ACCEL_KERNEL),
        seeds=(0, 1, 2), eval_problems=256, eval_samples=256, eval_batch=16,
        max_new_tokens=128)
  raise ValueError(f"preset: unknown preset {name!r}; valid: smoke, cpu, gpu, tpu")


# --------------------------------------------------------------------------------------------
# Command line


def parser(name: str, doc: str) -> argparse.ArgumentParser:
  """The flags every RL study takes."""
  p = argparse.ArgumentParser(prog=f"python experiments/{name}.py", description=doc)
  p.add_argument("--preset", default="cpu", choices=("smoke", "cpu", "gpu", "tpu"),
                 help="model / budget preset (smoke runs in seconds; cpu takes 4-40 min on 2 "
                      "cores, per study in experiments/README.md)")
  p.add_argument("--seeds", type=int, nargs="*", default=None,
                 help="override the preset's seeds")
  p.add_argument("--out", default=None, help="results folder (default experiments/results/NAME)")
  p.add_argument("--workdir", default=DEFAULT_WORKDIR,
                 help="where run folders (checkpoints, metrics.jsonl) go")
  p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
  p.add_argument("--compile-cache", default=None, metavar="DIR",
                 help="JAX's persistent compilation cache (default WORKDIR/jax_cache; 'none' "
                      "turns it off): runs of one architecture share their compiled steps")
  return p


def parse_args(name: str, doc: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
  """:func:`parser`'s flags, parsed; turns on the compilation cache they name."""
  args = parser(name, doc).parse_args(argv)
  cache = args.compile_cache or os.path.join(args.workdir, "jax_cache")
  args.compile_cache = _common.compilation_cache(None if cache == "none" else cache)
  return args


def apply_seeds(preset: RLPreset, seeds: Sequence[int] | None) -> RLPreset:
  return preset if not seeds else dataclasses.replace(preset, seeds=tuple(int(s) for s in seeds))


# --------------------------------------------------------------------------------------------
# Runs


def _log(progress: bool) -> LogConfig:
  return LogConfig(every=1, tensorboard=False, progress=progress, plot=False)


# Config fields added after runs were cached, with the value that reproduces those runs: left
# out of run keys at that value, so cached runs are still found (and any other value is a new
# run). pad_multiple (SFT, GRPO, PPO, DPO configs): 0 = fixed padding, as every run before it.
_KEY_NEUTRAL = {"pad_multiple": 0}


def _drop_neutral(x: Any) -> Any:
  if isinstance(x, dict):
    return {k: _drop_neutral(v) for k, v in x.items()
            if not (k in _KEY_NEUTRAL and v == _KEY_NEUTRAL[k])}
  if isinstance(x, list):
    return [_drop_neutral(v) for v in x]
  return x


def _key(*objs: Any) -> str:
  blob = json.dumps([_drop_neutral(_common._jsonable(o)) for o in objs], sort_keys=True)
  return hashlib.sha1(blob.encode()).hexdigest()[:10]


def task_fingerprint(spec: TaskSpec) -> str:
  """A hash of what the task's *code* produces for ``spec``: prompts, SFT targets, rewards and
  the alphabet on a few problems of its training stream.

  The run caches are keyed by configs (dataclasses), which do not change when a task's prompt
  text or reward does; the fingerprint, stored with each finished run, does.
  """
  from rljax.tasks import get_task

  task = get_task(spec.name)
  examples = problems(spec, 4, seed=spec.train_seed)
  rows = [[task.format_prompt(e), task.sft_target(e), float(task.reward(e, task.sft_target(e))),
           float(task.reward(e, "<answer>?</answer>"))] for e in examples]
  return _key(rows, task.alphabet(), list(task.special_tokens()))


_LEGACY_NOTED: set[str] = set()


def _fresh(done: dict[str, Any] | None, fingerprint: str, run_dir: str) -> bool:
  """Whether a finished run record may be reused under the current task code."""
  if done is None:
    return False
  stored = done.get("task_fingerprint")
  if stored is None:  # made before fingerprints were recorded: trusted, but say so (once)
    if run_dir in _LEGACY_NOTED:
      return True
    _LEGACY_NOTED.add(run_dir)
    print(f"note: reusing {run_dir}, cached without a task fingerprint; delete it to retrain if "
          "the task's code changed since", file=sys.stderr)
    return True
  if stored != fingerprint:
    print(f"note: {run_dir} was made by other task code (fingerprint {stored} != "
          f"{fingerprint}); retraining", file=sys.stderr)
    return False
  return True


def _done_marker(run_dir: str) -> str:
  return os.path.join(run_dir, "DONE.json")


def _clear(run_dir: str) -> None:
  """Remove a run folder about to be retrained, with the evaluations cached in it."""
  if os.path.isdir(run_dir):
    import shutil

    shutil.rmtree(run_dir)


def _parent_identity(init_from: str | None) -> str | None:
  """A hash of the finished-run record of the run a job starts from (``model.init_from``), or
  ``None`` (no parent, or one that is not a study run folder). A job's cache key holds the
  parent's *path*, which a chain of runs keeps when a parent is retrained; this tells the
  retrained parent from the old one."""
  if not init_from or not os.path.exists(_done_marker(init_from)):
    return None
  with open(_done_marker(init_from), "rb") as f:
    return hashlib.sha1(f.read()).hexdigest()[:12]


def _same_parent(done: dict[str, Any], init_from: str | None, run_dir: str) -> bool:
  """Whether a finished run was made from the parent run now at ``init_from``. Records made
  before parents were recorded count as made from it unless the parent finished after them."""
  ident = _parent_identity(init_from)
  if "parent" in done:
    return done["parent"] == ident
  if ident is None:
    return True
  if os.path.getmtime(_done_marker(init_from)) > os.path.getmtime(_done_marker(run_dir)):
    print(f"note: {run_dir} is older than the run it starts from ({init_from}); retraining",
          file=sys.stderr)
    return False
  return True


def _read_done(run_dir: str) -> dict[str, Any] | None:
  p = _done_marker(run_dir)
  if os.path.exists(p):
    with open(p) as f:
      return json.load(f)
  return None


def _write_done(run_dir: str, obj: dict[str, Any]) -> None:
  _common.write_json(_done_marker(run_dir), obj)


def sft_checkpoint(workdir: str, preset: RLPreset, seed: int | None = None, *,
                   task: TaskSpec | None = None,
                   steps: int | None = None, init_from: str | None = None,
                   optim: OptimConfig | None = None, progress: bool = True) -> dict[str, Any]:
  """Train (or reuse) a supervised checkpoint; returns ``{"run_dir", "after", "wall_s", ...}``.

  The run folder is ``<workdir>/sft/<hash of model, task, SFT config, init_from>-s<seed>``, so
  identical requests from different arms or studies reuse one finished run.
  """
  seed = preset.sft_seed if seed is None else seed
  task = task or preset.task
  sft = dataclasses.replace(preset.sft, steps=steps) if steps is not None else preset.sft
  model = dataclasses.replace(preset.model, init_from=init_from)
  optim = optim or dataclasses.replace(preset.sft_optim, decay_steps=max(sft.steps, 1))
  run_dir = os.path.join(workdir, "sft", f"{_key(model, task, sft, optim)}-s{seed}")
  done = _read_done(run_dir)
  fingerprint = task_fingerprint(task)
  if _fresh(done, fingerprint, run_dir) and _same_parent(done, init_from, run_dir):
    return done
  _clear(run_dir)
  from rljax.train import run_sft

  job = SFTJob(run_dir=run_dir, seed=seed, overwrite=True, model=model, task=task, sft=sft,
               optim=optim, log=_log(progress), checkpoint=CheckpointConfig(every=0, keep=1),
               eval=EvalConfig(num_samples=1, temperature=0.0, batch_size=preset.eval_batch))
  t = _common.Stopwatch()
  res = run_sft(job)
  out = {"run_dir": run_dir, "seed": seed, "before": res["before"], "after": res["after"],
         "wall_s": t(), "config": job, "task_fingerprint": fingerprint,
         "parent": _parent_identity(init_from)}
  _write_done(run_dir, out)
  return _read_done(run_dir)


def grpo_arm(workdir: str, study: str, arm: str, preset: RLPreset, seed: int, init_from: str | None,
             *, grpo: dict[str, Any] | None = None, task: TaskSpec | None = None,
             progress: bool = True) -> dict[str, Any]:
  """One GRPO / DAPO arm: ``preset.grpo`` with ``grpo`` overrides, from ``init_from``.

  Returns ``{"run_dir", "before", "after", "metrics": [records], "wall_s", "config"}``; a
  finished arm (same config) is reused.
  """
  cfg = dataclasses.replace(preset.grpo, **(grpo or {}))
  job = GRPOJob(run_dir=os.path.join(workdir, study, f"{arm}-s{seed}"), seed=seed,
                overwrite=True, model=dataclasses.replace(preset.model, init_from=init_from),
                task=task or preset.task, sft=SFTConfig(steps=0), optim=preset.optim, grpo=cfg,
                log=_log(progress), checkpoint=CheckpointConfig(every=0, keep=1),
                eval=EvalConfig(num_samples=1, temperature=0.0, batch_size=preset.eval_batch))
  return _run_cached(job, "grpo")


def ppo_arm(workdir: str, study: str, arm: str, preset: RLPreset, seed: int, init_from: str | None,
            *, ppo: dict[str, Any] | None = None, task: TaskSpec | None = None,
            progress: bool = True) -> dict[str, Any]:
  """One PPO arm (critic on a shared trunk), like :func:`grpo_arm`."""
  cfg = dataclasses.replace(preset.ppo, **(ppo or {}))
  job = PPOJob(run_dir=os.path.join(workdir, study, f"{arm}-s{seed}"), seed=seed,
               overwrite=True, model=dataclasses.replace(preset.model, init_from=init_from),
               task=task or preset.task, sft=SFTConfig(steps=0), optim=preset.optim, ppo=cfg,
               log=_log(progress), checkpoint=CheckpointConfig(every=0, keep=1),
               eval=EvalConfig(num_samples=1, temperature=0.0, batch_size=preset.eval_batch))
  return _run_cached(job, "ppo")


def _run_cached(job, kind: str) -> dict[str, Any]:
  from rljax.train import run_grpo, run_ppo

  key = _key(job)
  done = _read_done(job.run_dir)
  fingerprint = task_fingerprint(job.task)
  if (done is not None and done.get("key") == key
      and _fresh(done, fingerprint, job.run_dir)
      and _same_parent(done, job.model.init_from, job.run_dir)):
    done["metrics"] = read_metrics(job.run_dir)
    return done
  _clear(job.run_dir)
  t = _common.Stopwatch()
  res = (run_grpo if kind == "grpo" else run_ppo)(job)
  out = {"run_dir": job.run_dir, "key": key, "seed": job.seed, "before": res["before"],
         "after": res["after"], "wall_s": t(), "config": job, "task_fingerprint": fingerprint,
         "parent": _parent_identity(job.model.init_from)}
  _write_done(job.run_dir, out)
  out = _read_done(job.run_dir)
  out["metrics"] = read_metrics(job.run_dir)
  return out


def curve(records: list[dict[str, Any]], key: str, phase: str | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
  """``(steps, values)`` of metric ``key`` in a run's metrics records (one phase if given)."""
  rs = [r for r in records if key in r and (phase is None or r.get("phase") == phase)]
  return (np.asarray([r["step"] for r in rs], np.int64),
          np.asarray([r[key] for r in rs], np.float64))


def smooth(x: np.ndarray, w: int) -> np.ndarray:
  """Trailing moving average of width ``w`` (shorter at the start)."""
  x = np.asarray(x, np.float64)
  if w <= 1 or x.size == 0:
    return x
  c = np.cumsum(np.concatenate([[0.0], x]))
  i = np.arange(1, x.size + 1)
  lo = np.maximum(i - w, 0)
  return (c[i] - c[lo]) / (i - lo)


# --------------------------------------------------------------------------------------------
# Evaluation


def load_policy(run_dir: str):
  """``(model, task, tokenizer, job)`` of a run folder's newest checkpoint."""
  from rljax.train import load_run
  from rljax.train._policy import merge

  job, env, graphdef, params, rest = load_run(run_dir)
  return merge(graphdef, params, rest), env.task, env.tok, job


def problems(task_spec: TaskSpec, n: int, seed: int | None = None, **difficulty) -> list[Any]:
  """``n`` held-out problems of ``task_spec`` (its difficulty, overridden by ``difficulty``)."""
  from rljax.tasks import get_task

  diff = {**task_spec.difficulty_kwargs(), **difficulty}
  seed = task_spec.eval_seed if seed is None else seed
  return get_task(task_spec.name).generate(np.random.default_rng([seed]), n, **diff)


def sample_counts(model, task, tok, examples: Sequence[Any], *, n: int, temperature: float,
                  max_prompt_len: int, max_new_tokens: int, batch: int, seed: int,
                  well_formed: Callable[[Any, str], bool] | None = None,
                  probes: dict[str, Callable[[Any, str], bool]] | None = None) -> dict[str, Any]:
  """Correct-sample counts ``c [problems]`` out of ``n`` samples each, plus reward / format.

  ``well_formed(example, completion)`` decides ``format_ok``; the default looks for an
  ``<answer>`` tag, which tasks with another output format (code_edit) must replace.
  ``probes``: more per-completion checks, each reported as the fraction of completions passing.

  Returns:
    ``{"n", "c": [P], "reward_mean", "format_ok"}`` and, with ``probes``, ``"probes":
    {name: fraction}`` and ``"probe_c": {name: [P]}`` (the completions passing each probe, per
    problem, for a pass@k under that check).
  """
  from rljax.eval import sample_completions
  from rljax.tasks import extract_answer

  comps = sample_completions(model, task, tok, list(examples), num_samples=n,
                             temperature=temperature, batch_size=batch,
                             max_prompt_len=max_prompt_len, max_new_tokens=max_new_tokens,
                             rng=jax.random.key(seed))
  c = np.asarray([sum(task.is_correct(e, t) for t in ts) for e, ts in zip(examples, comps)])
  rewards = [task.reward(e, t) for e, ts in zip(examples, comps) for t in ts]
  if well_formed is None:
    well_formed = lambda e, t: extract_answer(t) is not None
  fmt = [well_formed(e, t) for e, ts in zip(examples, comps) for t in ts]
  out = {"n": int(n), "c": c.astype(int).tolist(), "reward_mean": float(np.mean(rewards)),
         "format_ok": float(np.mean(fmt))}
  if probes:
    hits = {k: [[bool(f(e, t)) for t in ts] for e, ts in zip(examples, comps)]
            for k, f in probes.items()}
    out["probes"] = {k: float(np.mean([h for row in v for h in row])) for k, v in hits.items()}
    out["probe_c"] = {k: [int(sum(row)) for row in v] for k, v in hits.items()}
  return out


def pass_ks(n: int) -> list[int]:
  """Powers of two up to n (and n)."""
  ks = [2 ** i for i in range(int(np.log2(n)) + 1)]
  return ks if ks[-1] == n else [*ks, n]


def pass_curve(n: int, c: Sequence[int], ks: Sequence[int]) -> list[float]:
  """Unbiased pass@k averaged over problems, for each k (``rljax.eval.pass_at_k``)."""
  from rljax.eval import pass_at_k

  c_arr = np.asarray(c, np.int64)
  return [float(np.mean(pass_at_k(n, c_arr, int(k)))) for k in ks]


def eval_pass(run_dir: str, preset: RLPreset, examples: Sequence[Any], seed: int,
              *, n: int | None = None, probes: Sequence[str] = ()) -> dict[str, Any]:
  """pass@k (k = powers of two up to n) of a run folder's policy on ``examples``.

  ``probes``: names of boolean methods ``task.<name>(example, completion)`` to report as
  fractions of completions (see :func:`sample_counts`), each with its own pass@k curve in
  ``"probe_pass": {name: [pass@k for k in ks]}``.
  Cached in ``<run_dir>/pass_eval/<hash of problems, n, temperature, cap, seed, probes>.json``.
  """
  n = n or preset.eval_samples
  key = _key([e.prompt for e in examples], n, preset.eval_temperature, preset.max_new_tokens,
             seed, *([list(probes)] if probes else []))
  cache = os.path.join(run_dir, "pass_eval", f"{key}.json")
  if os.path.exists(cache):
    with open(cache) as f:
      return json.load(f)
  model, task, tok, job = load_policy(run_dir)
  # The run's own prompt length, or the study's where that is longer (a model trained on short
  # prompts evaluated on longer ones: left padding, so only the pad count changes).
  lp = max(job.task.max_prompt_len, preset.task.max_prompt_len)
  res = sample_counts(model, task, tok, examples, n=n, temperature=preset.eval_temperature,
                      max_prompt_len=lp,
                      max_new_tokens=preset.max_new_tokens, batch=preset.eval_batch, seed=seed,
                      probes={p: getattr(task, p) for p in probes} or None)
  ks = pass_ks(n)
  res["ks"] = ks
  res["pass"] = pass_curve(n, res["c"], ks)
  if "probe_c" in res:
    res["probe_pass"] = {k: pass_curve(n, c, ks) for k, c in res["probe_c"].items()}
  os.makedirs(os.path.dirname(cache), exist_ok=True)
  _common.write_json(cache, res)
  return res


# The probe behind verified pass@k: ``ArithmeticDAG.process_check`` accepts a completion only
# when every worked step parses and is right and the answer is right (the paper of the
# difficulty study, arXiv 2512.07783, counts a sample this way). With answers mod 10 a guess
# has answer-only pass@k 1 - 0.9^k (0.97 at k = 32) but practically never passes this check.
VERIFY = "process_check"
# Verified pass@1 below this: the policy gets every step right in under 1 sample of 20, too
# little competence for RL to sharpen or for a pass@k comparison to read.
VERIFIED_FLOOR = 0.05
# A win under this many seed spreads is reported as marginal (:func:`marginal`).
MARGINAL_SPREADS = 2


def verified_eval(run_dir: str, preset: RLPreset, examples: Sequence[Any], seed: int,
                  *, n: int | None = None) -> dict[str, Any]:
  """Verified and answer-only pass@k of a run folder's policy on arithmetic ``examples``.

  Returns:
    ``"pass"``: verified pass@k (every worked step and the answer right, :data:`VERIFY`);
    ``"answer_pass"``: the answer alone; ``"verified_share"`` / ``"answer_share"``: the
    fraction of samples passing each; ``"c"`` / ``"answer_c"``: per-problem counts; ``"ks"``,
    ``"n"``, ``"format_ok"`` (the fraction with an ``<answer>`` tag), ``"reward_mean"``.
  """
  e = eval_pass(run_dir, preset, examples, seed, n=n, probes=(VERIFY,))
  return {"pass": e["probe_pass"][VERIFY], "answer_pass": e["pass"], "ks": e["ks"],
          "verified_share": e["probes"][VERIFY], "answer_share": float(np.mean(e["c"])) / e["n"],
          "format_ok": e["format_ok"], "reward_mean": e["reward_mean"],
          "c": e["probe_c"][VERIFY], "answer_c": e["c"], "n": e["n"]}


def marginal(gain: float, spread: float) -> bool:
  """A win beyond the seed spread but under :data:`MARGINAL_SPREADS` times it: the verdicts
  call it marginal."""
  return gain < MARGINAL_SPREADS * spread


def verified_floor(pass1: float, who: str) -> str:
  """The floor-effect sentence when a verified pass@1 is under :data:`VERIFIED_FLOOR`, else
  ``""``."""
  if pass1 >= VERIFIED_FLOOR:
    return ""
  return (f"{who} ({pass1:.3f}) is under {VERIFIED_FLOOR:g}: the policy gets every step right "
          "in fewer than 1 sample of 20")


def token_entropies(run_dir: str, preset: RLPreset, examples: Sequence[Any], seed: int,
                    temperature: float = 1.0) -> np.ndarray:
  """Entropies ``H_t = -sum_v p log p`` (p = softmax(logits / T)) of every valid token the
  policy samples for ``examples`` (one sample each), as a flat array."""
  from rljax import rollout
  from rljax.train import _data

  model, task, tok, job = load_policy(run_dir)
  lp = job.task.max_prompt_len
  out = []
  for s in range(0, len(examples), preset.eval_batch):
    chunk = list(examples[s:s + preset.eval_batch])
    prompt, pmask = _data.encode_prompts(tok, [task.format_prompt(e) for e in chunk], lp)
    res = rollout.generate(model, prompt, pmask, max_new_tokens=preset.max_new_tokens,
                           rng=jax.random.fold_in(jax.random.key(seed), s),
                           temperature=temperature, eos_id=tok.eos_id, pad_id=tok.pad_id)
    tokens = np.asarray(res.tokens)[:, :preset.max_new_tokens]
    mask = np.asarray(res.mask)[:, :preset.max_new_tokens]
    seq = jnp.concatenate([jnp.asarray(prompt), jnp.asarray(tokens)], axis=1).astype(jnp.int32)
    attn = jnp.concatenate([jnp.asarray(pmask), jnp.asarray(mask)], axis=1).astype(jnp.int32)
    logits = model(seq, attention_mask=attn)[:, lp - 1:lp - 1 + tokens.shape[1]]
    logz = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature, axis=-1)
    ent = -jnp.sum(jnp.exp(logz) * logz, axis=-1)
    out.append(np.asarray(ent)[mask.astype(bool)])
  return np.concatenate(out) if out else np.zeros((0,))


# --------------------------------------------------------------------------------------------
# Results


def read_results(path: str) -> dict[str, Any]:
  """A finished study folder's ``results.json``, to re-render its README without training."""
  with open(os.path.join(path, "results.json")) as f:
    return json.load(f)


def write_results(name: str, out: str | None, *, preset_name: str, preset: RLPreset,
                  arms: dict[str, Any], summary: dict[str, Any], wall_s: float,
                  extra: dict[str, Any] | None = None) -> str:
  """``results.json``: study, preset (full config), seeds, machine, wall time, arms, summary."""
  path = _common.results_dir(name, out)
  for arm in arms.values():
    for run in arm if isinstance(arm, list) else [arm]:
      if isinstance(run, dict):
        run.pop("metrics_full", None)
  _common.write_json(os.path.join(path, "results.json"), {
      "study": name, "preset": preset_name, "config": preset, "seeds": list(preset.seeds),
      "machine": _common.machine_info(), "wall_time_s": wall_s,
      "utc_end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "summary": summary, "arms": arms, **(extra or {})})
  return path


def slim_metrics(records: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, list[float]]:
  """The per-step curves of ``keys`` (RL phase records only) as lists."""
  out: dict[str, list[float]] = {"step": [r["step"] for r in records if "reward_mean" in r]}
  for k in keys:
    out[k] = [float(r.get(k, float("nan"))) for r in records if "reward_mean" in r]
  return out


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A markdown table."""
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
  return "\n".join(lines)


def write_readme(path: str, text: str) -> None:
  with open(os.path.join(path, "README.md"), "w") as f:
    f.write(text.rstrip() + "\n")


def command(name: str, preset: str) -> str:
  return f"python experiments/{name}.py --preset {preset}"




# --------------------------------------------------------------------------------------------
# Study-local task variants (registered under new names so the job API can train on them)


def run_arms(args, preset: RLPreset, study: str, arms: dict[str, dict[str, Any]],
             eval_sets: dict[str, Sequence[Any]], *, n: int | None = None,
             curve_keys: Sequence[str] = ("reward_mean", "accuracy", "entropy",
                                          "response_length")) -> dict[str, Any]:
  """GRPO arms (``{arm: GRPOConfig overrides}``) x seeds from the shared SFT warm start, each
  evaluated with verified and answer-only pass@k on every set of ``eval_sets``.

  Returns:
    ``{"sft": run info, "arms": {arm: [per-seed run info with "curves" and "eval"]}}`` where
    ``eval[set]`` is :func:`verified_eval`'s dict (``"pass"`` verified, ``"answer_pass"``).
  """
  progress = not args.no_progress
  sft = sft_checkpoint(args.workdir, preset, progress=progress)
  out: dict[str, Any] = {"sft": {k: v for k, v in sft.items() if k != "config"}, "arms": {}}
  for arm, overrides in arms.items():
    runs = []
    for seed in preset.seeds:
      rl = grpo_arm(args.workdir, study, arm, preset, seed, sft["run_dir"], grpo=overrides,
                    progress=progress)
      info = {k: v for k, v in rl.items() if k not in ("metrics", "config")}
      info["overrides"] = overrides
      info["curves"] = slim_metrics(rl["metrics"], curve_keys)
      info["eval"] = {s: verified_eval(rl["run_dir"], preset, ex, seed + 100, n=n)
                      for s, ex in eval_sets.items()}
      runs.append(info)
    out["arms"][arm] = runs
  return out


def arm_stat(runs: list[dict[str, Any]], set_name: str, k: int, key: str = "pass"
             ) -> tuple[float, float, list]:
  """``(mean, std, values)`` over seeds of pass@k on one eval set (``key``: ``"pass"``, the
  verified one, or ``"answer_pass"``)."""
  vals = [r["eval"][set_name][key][r["eval"][set_name]["ks"].index(k)] for r in runs]
  return float(np.mean(vals)), float(np.std(vals)), vals


def pm(m: float, s: float, n_seeds: int, digits: int = 3) -> str:
  return f"{m:.{digits}f}" if n_seeds == 1 else f"{m:.{digits}f} +- {s:.{digits}f}"


def plot_curves(path: str, arms: dict[str, list[dict[str, Any]]], key: str, fname: str,
                ylabel: str, window: int = 5) -> None:
  """Training curve ``key`` of every arm: mean over seeds (moving average) +- std band."""
  plt = _common.plt()
  fig, ax = plt.subplots(figsize=(6, 4))
  for arm, runs in arms.items():
    ys = [smooth(np.asarray(r["curves"][key], np.float64), window) for r in runs]
    m = min(len(y) for y in ys)
    if m == 0:
      continue
    _common.plot_band(ax, np.asarray(runs[0]["curves"]["step"][:m]),
                      np.stack([y[:m] for y in ys]), label=arm)
  ax.set_xlabel("RL step")
  ax.set_ylabel(f"{ylabel} (moving avg {window})")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(path, fname), dpi=120)
  plt.close(fig)


PASS_ROWS = (("pass", "verified pass@k"), ("answer_pass", "answer-only pass@k"))


def plot_pass(path: str, arms: dict[str, list[dict[str, Any]]], set_names: Sequence[str],
              fname: str, base: dict[str, Any] | None = None) -> None:
  """pass@k vs k (log2) of every arm per eval set, error bars = std over seeds, with the base
  (SFT) policy's curve when given: verified pass@k on the top row, answer-only below it with
  the chance level of a uniform guess (:func:`chance_pass`)."""
  plt = _common.plt()
  fig, axes = plt.subplots(len(PASS_ROWS), len(set_names),
                           figsize=(5 * len(set_names), 3.6 * len(PASS_ROWS)), squeeze=False)
  for row, (key, ylabel) in zip(axes, PASS_ROWS):
    for ax, s in zip(row, set_names):
      if base is not None and s in base:
        ax.plot(base[s]["ks"], base[s][key], "k--", marker=".", label="base (SFT)")
      for arm, runs in arms.items():
        ks = runs[0]["eval"][s]["ks"]
        vals = np.asarray([r["eval"][s][key] for r in runs])
        ax.errorbar(ks, vals.mean(0), yerr=vals.std(0), marker="o", capsize=3, label=arm)
      pass_axis(ax, ks, s, ylabel, chance=key == "answer_pass")
  fig.tight_layout()
  fig.savefig(os.path.join(path, fname), dpi=120)
  plt.close(fig)


def pass_axis(ax, ks: Sequence[int], set_name: str, ylabel: str, *, chance: bool) -> None:
  """One pass@k-vs-k panel's axes (log2 k, [0, 1], title, grid, legend), with the chance
  level of a uniform guess (:func:`chance_pass`) where ``chance`` (answer-only panels)."""
  if chance:
    ax.plot(ks, [chance_pass(k) for k in ks], ":", color="gray", lw=1,
            label="chance (uniform guess)")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("k")
  ax.set_ylabel(ylabel)
  ax.set_ylim(0, 1.02)
  ax.set_title(set_name.replace("_", " "))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)


def setup_line(preset: RLPreset, preset_name: str, wall: float) -> str:
  """The README "Setup" facts shared by the arithmetic GRPO studies."""
  m = preset.model
  g = preset.grpo
  return (f"arithmetic_dag (compact template, mod 10, `{', '.join(preset.task.difficulty)}`); "
          f"model {m.num_layers} layers x {m.d_model} ({m.norm}) from scratch; warm start SFT "
          f"{preset.sft.steps} steps (seed {preset.sft_seed}); RL {g.steps} steps x "
          f"{g.prompts_per_step} prompts x G={g.group_size}, lr {preset.optim.learning_rate:g}; "
          f"pass@k from n={preset.eval_samples} samples at T={preset.eval_temperature} on "
          f"{preset.eval_problems} held-out problems; {len(preset.seeds)} RL seed(s), mean +- "
          f"std over seeds; preset `{preset_name}`, {wall / 60:.1f} min wall on "
          f"{os.cpu_count()} CPU cores (without the warm start when it was cached: its own "
          f"time is `sft.wall_s` in results.json). {VERIFIED_LINE}")


VERIFIED_LINE = ("pass@k is verified: a sample counts only when every worked step and the answer "
                 "are right (`ArithmeticDAG.process_check`, as the difficulty paper counts); "
                 "answer-only pass@k, which a uniform guess passes with probability 1 - 0.9^k, "
                 "is reported beside it. GRPO's reward is the answer alone.")


__all__ = [
  "MARGINAL_SPREADS",
  "PASS_ROWS",
  "VERIFIED_FLOOR",
  "VERIFIED_LINE",
  "VERIFY",
  "RLPreset",
  "apply_seeds",
  "arithmetic_preset",
  "arithmetic_task",
  "arm_stat",
  "chance_line",
  "chance_pass",
  "command",
  "curve",
  "early_verdict",
  "eval_pass",
  "grpo_arm",
  "load_policy",
  "marginal",
  "no_lift",
  "parser",
  "pass_axis",
  "pass_curve",
  "pass_ks",
  "plot_curves",
  "plot_pass",
  "pm",
  "ppo_arm",
  "problems",
  "read_results",
  "run_arms",
  "sample_counts",
  "setup_line",
  "sft_checkpoint",
  "slim_metrics",
  "smooth",
  "table",
  "token_entropies",
  "verified_eval",
  "verified_floor",
  "write_readme",
  "write_results",
]
