"""Training loops: SFT, GRPO / DAPO, PPO, DPO, with sharding, checkpoints, resume and logging.

The edge of the library: this is where steps are jitted (once, with explicit shardings and a
donated state). A run folder holds::

  checkpoints/<phase>/<step>/   Orbax checkpoints (state + JSON meta)
  metrics.jsonl                 one record per logged step (phase, step, metrics)
  tb/                           TensorBoard event files
  eval.json                     held-out accuracy before / after training, and what each was
                                measured after (reused by --resume only when that still holds)
  curves.png                    reward / accuracy / entropy / length curves

With many processes (``jax.distributed``) every process runs these loops on the same host data;
process 0 alone writes the files above, except the checkpoints, which Orbax writes together.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rljax import losses
from rljax.train import _data, _steps
from rljax.train._checkpoint import Checkpointer
from rljax.train._config import (
  DPOJob,
  GRPOJob,
  Job,
  MeshConfig,
  OptimConfig,
  PPOJob,
  SFTConfig,
  SFTJob,
)
from rljax.train._logging import MetricsLogger, plot_curves
from rljax.train._optim import make_optimizer
from rljax.train._policy import TrainState, build_model, merge, split
from rljax.train._sharding import (
  BATCH_AXES,
  batch_shardings,
  data_parallel_size,
  is_primary,
  make_mesh,
  replicated,
  shard_batch,
  sync_processes,
  to_host,
  tree_shardings,
)

# --------------------------------------------------------------------------------------------
# Validation and set-up


def _get_task(name: str):
  from rljax import tasks

  try:
    return tasks.get_task(name)
  except (KeyError, ValueError) as e:
    raise ValueError(f"task.name: unknown task {name!r} ({e})") from None


def _divisible(rows: int, dp: int, field: str) -> None:
  if rows % dp:
    raise ValueError(f"{field}: {rows} rows are not divisible by the data-parallel size {dp} "
                     f"(mesh.data * mesh.fsdp); change {field} or the mesh")


def validate_job(job: Job, num_devices: int | None = None) -> None:
  """Start-up checks that need the device count or the task registry (raise naming the field).

  Nothing is written anywhere before this passes.
  """
  num_devices = jax.device_count() if num_devices is None else num_devices
  sizes = job.mesh.shape(num_devices)
  dp = sizes["data"] * sizes["fsdp"]
  _get_task(job.task.name)
  sft = getattr(job, "sft", None)
  if isinstance(sft, SFTConfig) and sft.steps > 0:
    _divisible(sft.batch_size, dp, "sft.batch_size")
  if isinstance(job, GRPOJob):
    _divisible(job.grpo.rows // job.grpo.minibatches, dp,
               "grpo.prompts_per_step * grpo.group_size / grpo.minibatches")
  if isinstance(job, PPOJob):
    _divisible(job.ppo.prompts_per_step // job.ppo.minibatches, dp,
               "ppo.prompts_per_step / ppo.minibatches")
  if isinstance(job, DPOJob):
    _divisible(job.dpo.batch_size, dp, "dpo.batch_size")
  if os.path.isdir(job.run_dir) and os.listdir(job.run_dir) and not (job.resume or job.overwrite):
    raise ValueError(f"run_dir: {job.run_dir!r} exists and is not empty; pass --resume to "
                     f"continue it or --overwrite to write into it")


@dataclasses.dataclass
class Env:
  """What every loop needs: the job, task, tokenizer, mesh, and the data streams."""

  job: Job
  task: Any
  tok: Any
  mesh: jax.sharding.Mesh
  train: _data.ProblemStream
  held_out: list[Any]


def make_tokenizer(task):
  """The character tokenizer of a synthetic task."""
  from rljax import tasks

  return tasks.CharTokenizer.from_task(task)


def setup(job: Job, *, training: bool = True) -> Env:
  """Validate, then build the task, tokenizer, mesh and streams (writes nothing).

  ``training=False`` (a finished run loaded to evaluate or export it): only the task name is
  checked, not the batch sizes against the mesh or the run folder, and the mesh puts this
  machine's devices on "data", whatever mesh and device count the run was trained with.
  """
  if training:
    validate_job(job)
    # Many hosts: no process writes into run_dir before every process has checked it is empty.
    sync_processes("rljax: job validated")
  task = _get_task(job.task.name)
  tok = make_tokenizer(task)
  mesh = make_mesh(job.mesh if training else MeshConfig())
  diff = job.task.difficulty_kwargs()
  held = task.generate(np.random.default_rng([job.task.eval_seed]), job.task.num_eval, **diff)
  return Env(job=job, task=task, tok=tok, mesh=mesh,
             train=_data.ProblemStream(task, job.task.train_seed, diff), held_out=held)


def _prepare_run_dir(job: Job) -> None:
  if is_primary():  # many hosts: process 0 writes the run folder's files, the others read
    os.makedirs(job.run_dir, exist_ok=True)
    with open(os.path.join(job.run_dir, "config.json"), "w") as f:
      json.dump({"job": type(job).__name__, **_jsonable(dataclasses.asdict(job))}, f, indent=1)
  sync_processes("rljax: run_dir prepared")


def _jsonable(x):
  return json.loads(json.dumps(x, default=str))


def jit_step(fn: Callable, state: TrainState, batch: dict[str, Any], mesh) -> Callable:
  """``jax.jit(fn)`` with explicit state / batch shardings and the state donated."""
  state_sh = tree_shardings(state, mesh)
  return jax.jit(fn, in_shardings=(state_sh, batch_shardings(batch, mesh)),
                 out_shardings=(state_sh, replicated(mesh)), donate_argnums=0)


def place_state(state: TrainState, mesh) -> TrainState:
  """A copy of ``state`` placed by the rules table (a copy: the jitted steps donate it)."""
  return jax.device_put(state, tree_shardings(state, mesh), may_alias=False)


def _mean_metrics(ms: list[dict[str, Any]]) -> dict[str, float]:
  ms = jax.device_get(ms)
  return {k: float(np.mean([m[k] for m in ms])) for k in ms[0]} if ms else {}


# --------------------------------------------------------------------------------------------
# The phase driver: resume, iterate, checkpoint, log.


def _ckpt(env: Env, phase: str) -> Checkpointer:
  return Checkpointer(os.path.join(env.job.run_dir, "checkpoints", phase), env.job.checkpoint)


def _run_phase(env: Env, phase: str, state: TrainState, total: int,
               iteration: Callable[[TrainState, int], tuple[TrainState, dict[str, Any]]]
               ) -> TrainState:
  """Run ``iteration`` for steps ``[start, total)``, resuming from the phase's checkpoints.

  The data-iterator position is the step: ``iteration(state, s)`` must draw its data and
  randomness from ``s`` only, so an interrupted and resumed run equals an uninterrupted one.
  """
  ckpt = _ckpt(env, phase)
  start = 0
  if env.job.resume:
    got = ckpt.restore(state)
    if got is not None:
      state, meta, start = got
      if int(meta.get("data_position", start)) != start:
        raise RuntimeError(f"checkpoint {start} of {phase} has data_position "
                           f"{meta.get('data_position')}")
  logger = MetricsLogger(env.job.run_dir, env.job.log, total=total, phase=phase, initial=start)
  try:
    for s in range(start, total):
      t0 = time.perf_counter()
      state, metrics = iteration(state, s)
      # Wait for the step itself (not just its dispatch) so step_time and tokens/s are real.
      metrics = dict(jax.block_until_ready(metrics))
      metrics["step_time"] = time.perf_counter() - t0
      if "tokens" in metrics:
        metrics["tokens_per_s"] = metrics["tokens"] / max(metrics["step_time"], 1e-9)
      logger.log(s + 1, metrics, force=(s + 1 == total))
      if ckpt.should_save(s + 1) or s + 1 == total:
        ckpt.save(s + 1, state, {"phase": phase, "data_position": s + 1, "step": s + 1,
                                 "config": _jsonable(dataclasses.asdict(env.job))})
  finally:
    logger.close()
    ckpt.close()
  return state


def _phase_done(env: Env, phase: str, total: int) -> bool:
  return env.job.resume and total in _ckpt(env, phase).steps()


# --------------------------------------------------------------------------------------------
# Evaluation


def evaluate_policy(env: Env, params, graphdef, rest, *, seed: int) -> dict[str, float]:
  """Held-out accuracy / pass@k of the policy on ``env.held_out`` (see rljax.eval.evaluate)."""
  from rljax import eval as rl_eval

  model = merge(graphdef, params, rest)
  job = env.job
  return rl_eval.evaluate(
      model, env.task, env.tok, env.held_out, num_samples=job.eval.num_samples,
      temperature=job.eval.temperature, ks=job.eval.ks, batch_size=job.eval.batch_size,
      max_prompt_len=job.task.max_prompt_len, max_new_tokens=job.task.max_answer_len,
      rng=jax.random.key(seed), mesh=rows_mesh(env, job.eval.batch_size), batch_axis=BATCH_AXES)


def _eval_context(env: Env, key: str) -> dict[str, Any]:
  """What a held-out result depends on besides the seed: the evaluation settings and the
  steps of every phase trained before it (``"before"``: the warm start only)."""
  job = env.job
  steps = {}
  if key == "after" or not isinstance(job, SFTJob):  # an SFT job's "before" is untrained
    steps["sft"] = job.sft.steps
  if key == "after":
    for name in ("grpo", "ppo", "dpo"):
      if hasattr(job, name):
        steps[name] = getattr(job, name).steps
  return {"steps": steps, "eval": _jsonable(dataclasses.asdict(job.eval)),
          "num_eval": job.task.num_eval, "eval_seed": job.task.eval_seed}


def _record_eval(env: Env, key: str, res: dict[str, float]) -> None:
  if not is_primary():
    return
  path = os.path.join(env.job.run_dir, "eval.json")
  data = {}
  if os.path.exists(path):
    with open(path) as f:
      data = json.load(f)
  data[key] = res
  data[f"{key}_context"] = _eval_context(env, key)
  with open(path, "w") as f:
    json.dump(data, f, indent=1)


def _load_eval(env: Env, key: str) -> dict[str, float] | None:
  """A result recorded by an earlier run of this folder (``--resume``), if it was measured
  after the same training steps with the same evaluation settings; else None."""
  path = os.path.join(env.job.run_dir, "eval.json")
  if env.job.resume and os.path.exists(path):
    with open(path) as f:
      data = json.load(f)
    if data.get(f"{key}_context") == _eval_context(env, key):
      return data.get(key)
  return None


def _eval_cached(env: Env, key: str, params, graphdef, rest) -> dict[str, float]:
  if not env.held_out:
    return {}
  res = _load_eval(env, key)
  if res is None:
    res = evaluate_policy(env, params, graphdef, rest, seed=env.job.seed + 7)
    _record_eval(env, key, res)
  return res


# --------------------------------------------------------------------------------------------
# Model initialisation


def init_policy(env: Env):
  """``(graphdef, params, rest)`` of a fresh model, a HF checkpoint, or ``model.init_from``."""
  spec = env.job.model
  model = build_model(spec, env.tok.vocab_size, env.job.seed)
  graphdef, params, rest = split(model)
  if spec.init_from:
    params = load_params(spec.init_from, params)
  return graphdef, params, rest


def load_params(path: str, like):
  """The policy params of the newest readable checkpoint of a run folder (RL phases first,
  then SFT) or of one phase's checkpoint folder.

  The restore target (optimizer-state structure, PPO value head) is rebuilt from the job
  config stored in the checkpoint's metadata.
  """
  ck_root = os.path.join(path, "checkpoints")
  if os.path.isdir(ck_root):
    cands = [os.path.join(ck_root, p) for p in ("grpo", "ppo", "dpo", "sft")
             if os.path.isdir(os.path.join(ck_root, p))]
  else:
    cands = [path]
  for d in cands:
    ck = Checkpointer(d)
    got_meta = ck.restore_meta()
    if got_meta is None:
      ck.close()
      continue
    meta = got_meta[0]
    got = ck.restore(_abstract_state_for(meta, like))
    ck.close()
    if got is not None:
      params = got[0].params
      return params["policy"] if meta.get("phase") == "ppo" else params
  raise FileNotFoundError(f"model.init_from: no readable checkpoint under {path!r}")


def _abstract_state_for(meta: dict[str, Any], like):
  """The restore target of a checkpoint whose policy params look like ``like``.

  Every leaf is replicated over all devices of this run, whatever mesh (or number of
  processes) wrote the checkpoint: Orbax refuses a target without shardings when the
  checkpoint's device topology differs from the current one.
  """
  cfg = meta.get("config", {})
  phase = meta.get("phase", "sft")
  key = "sft_optim" if phase == "sft" and "sft_optim" in cfg else "optim"
  optim = _from_dict(OptimConfig, cfg.get(key, {}))
  opt = make_optimizer(optim)
  tree = like
  if phase == "ppo":
    d_model = cfg["model"]["d_model"]
    tree = {"policy": like, "value_head": _steps.value_head_init(d_model, None)}
    if not cfg.get("ppo", {}).get("shared_trunk", True):
      tree["critic"] = like
  shapes = jax.eval_shape(lambda p: TrainState.create(p, opt, 0), tree)
  everywhere = replicated(jax.sharding.Mesh(np.asarray(jax.devices()), ("all",)))
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=everywhere),
                      shapes)


# --------------------------------------------------------------------------------------------
# SFT


def sft_phase(env: Env, graphdef, params, rest, cfg: SFTConfig, optim: OptimConfig,
              phase: str = "sft"):
  """Supervised warm start; returns the trained params."""
  if cfg.steps == 0:
    return params
  opt = make_optimizer(optim)
  state = place_state(TrainState.create(params, opt, env.job.seed), env.mesh)
  job = env.job

  def batch_at(s):
    ex = env.train.batch(s, cfg.batch_size, round_=1_000)
    return _data.sft_batch(env.task, env.tok, ex, job.task.max_prompt_len, job.task.max_answer_len,
                           pad_multiple=cfg.pad_multiple)

  # jit recompiles for each new bucketed shape (pad_multiple > 0); the shardings are per rank.
  step = jit_step(functools.partial(_steps.sft_step, graphdef=graphdef, rest=rest, optimizer=opt),
                  state, batch_at(0), env.mesh)

  def iteration(state, s):
    return step(state, shard_batch(batch_at(s), env.mesh))

  state = _run_phase(env, phase, state, cfg.steps, iteration)
  return state.params


def run_sft(job: SFTJob) -> dict[str, Any]:
  """``rljax sft``: train, then report held-out accuracy before and after."""
  env = setup(job)
  _prepare_run_dir(job)
  graphdef, params, rest = init_policy(env)
  before = _eval_cached(env, "before", params, graphdef, rest)
  params = sft_phase(env, graphdef, params, rest, job.sft, job.optim)
  after = _eval_cached(env, "after", params, graphdef, rest)
  return _finish(env, before, after)


def _finish(env: Env, before, after) -> dict[str, Any]:
  if env.job.log.plot and is_primary():
    plot_curves(env.job.run_dir)
  return {"before": before, "after": after, "run_dir": env.job.run_dir}


def _run_rl(job: Job, phase: Callable) -> dict[str, Any]:
  """Set-up, optional SFT warm start, held-out accuracy, the RL ``phase``, held-out accuracy."""
  env = setup(job)
  _prepare_run_dir(job)
  graphdef, params, rest = init_policy(env)
  params = _warm_start(env, job, graphdef, params, rest)
  before = _eval_cached(env, "before", params, graphdef, rest)
  params = phase(env, graphdef, params, rest)
  after = _eval_cached(env, "after", params, graphdef, rest)
  return _finish(env, before, after)


def _warm_start(env: Env, job, graphdef, params, rest):
  """SFT warm start (resumable); a finished one is restored instead of re-run."""
  if job.sft.steps == 0:
    return params
  if _phase_done(env, "sft", job.sft.steps):
    return _restore_params(env, "sft", params, job.sft_optim)
  return sft_phase(env, graphdef, params, rest, job.sft, job.sft_optim)


def _restore_params(env: Env, phase: str, params, optim: OptimConfig):
  opt = make_optimizer(optim)
  like = place_state(TrainState.create(params, opt, env.job.seed), env.mesh)
  got = _ckpt(env, phase).restore(like)
  if got is None:
    raise RuntimeError(f"could not restore the {phase} checkpoint of {env.job.run_dir}")
  return got[0].params


# --------------------------------------------------------------------------------------------
# GRPO / DAPO


def rows_mesh(env: Env, prompts: int):
  """The mesh to shard a rollout of ``prompts`` prompts over, or None to replicate it.

  With a data-parallel size dp > 1 dividing ``prompts``, each batch shard's devices sample
  their own rows; otherwise (dp = 1, or rows that do not split) every device samples every row.
  """
  dp = data_parallel_size(env.mesh)
  return env.mesh if dp > 1 and prompts % dp == 0 else None


def _rollout(model, prompt, prompt_mask, *, max_new_tokens, rng, temperature, top_k, top_p,
             eos_id, pad_id, num_samples, mesh=None):
  from rljax import rollout

  res = rollout.generate(model, np.asarray(prompt), np.asarray(prompt_mask),
                         max_new_tokens=max_new_tokens, rng=rng, temperature=temperature,
                         top_k=top_k, top_p=top_p, eos_id=eos_id, pad_id=pad_id,
                         num_samples=num_samples, mesh=mesh, batch_axis=BATCH_AXES)
  return tuple(to_host(a)[:, :max_new_tokens] for a in (res.tokens, res.logprobs, res.mask))


@dataclasses.dataclass
class RolloutBatch:
  """Host-side rollout data of one GRPO step (rows = prompts x G, samples adjacent)."""

  prompt: np.ndarray  # [R, P]
  prompt_mask: np.ndarray  # [R, P]
  tokens: np.ndarray  # [R, N]
  mask: np.ndarray  # [R, N]
  sampler_logp: np.ndarray  # [R, N]
  rewards: np.ndarray  # [R]
  correct: np.ndarray  # [R] bool
  lengths: np.ndarray  # [R]
  truncated: np.ndarray  # [R] bool


def grpo_rollout(env: Env, model, s: int, round_: int, key) -> RolloutBatch:
  """Sample G completions for each of ``prompts_per_step`` problems and score them."""
  cfg, job = env.job.grpo, env.job
  ex = env.train.batch(s, cfg.prompts_per_step, round_=round_)
  prompt, pmask = _data.encode_prompts(env.tok, [env.task.format_prompt(e) for e in ex],
                                       job.task.max_prompt_len)
  tokens, logp, mask = _rollout(
      model, prompt, pmask, max_new_tokens=cfg.max_new_tokens,
      rng=jax.random.fold_in(key, round_), temperature=cfg.temperature, top_k=cfg.top_k,
      top_p=cfg.top_p, eos_id=env.tok.eos_id, pad_id=env.tok.pad_id, num_samples=cfg.group_size,
      mesh=rows_mesh(env, len(ex)))
  texts = _data.decode_completions(env.tok, tokens, mask)
  ex_rows = [e for e in ex for _ in range(cfg.group_size)]
  rewards = env.task.rewards(ex_rows, texts).astype(np.float32)
  correct = np.asarray([env.task.is_correct(e, t) for e, t in zip(ex_rows, texts)])
  lengths = np.asarray(mask).sum(-1).astype(np.int32)
  last = np.take_along_axis(np.asarray(tokens), np.maximum(lengths - 1, 0)[:, None], 1)[:, 0]
  truncated = (lengths >= cfg.max_new_tokens) & (last != env.tok.eos_id)
  rep = lambda a: np.repeat(a, cfg.group_size, axis=0)
  return RolloutBatch(prompt=rep(prompt), prompt_mask=rep(pmask), tokens=np.asarray(tokens),
                      mask=np.asarray(mask).astype(np.int32), sampler_logp=np.asarray(logp),
                      rewards=rewards, correct=correct, lengths=lengths, truncated=truncated)


def _select_rows(b: RolloutBatch, rows: np.ndarray) -> RolloutBatch:
  return RolloutBatch(**{f.name: getattr(b, f.name)[rows] for f in dataclasses.fields(b)})


def _concat(bs: list[RolloutBatch]) -> RolloutBatch:
  return RolloutBatch(**{f.name: np.concatenate([getattr(b, f.name) for b in bs])
                         for f in dataclasses.fields(bs[0])})


def shaped_rewards(b: RolloutBatch, cfg) -> np.ndarray:
  """Task rewards plus DAPO's soft overlong punishment when enabled."""
  r = b.rewards
  if cfg.overlong_max_len is not None:
    pen = losses.overlong_penalty(jnp.asarray(b.lengths), max_len=cfg.overlong_max_len,
                                  cache_len=cfg.overlong_cache_len)
    r = r + np.asarray(pen, np.float32)
  return r.astype(np.float32)


def dynamic_sample(env: Env, model, s: int, key) -> tuple[RolloutBatch, np.ndarray, dict]:
  """Rollouts for step ``s`` with DAPO dynamic sampling.

  Groups whose G rewards are all equal are dropped and new prompts are sampled until
  ``prompts_per_step`` informative groups are collected or ``max_sampling_rounds`` is hit;
  remaining slots are filled with dropped groups whose loss mask is zeroed.

  Returns:
    ``(batch, shaped rewards [R], stats)``; the batch's loss mask excludes filler groups.
  """
  cfg = env.job.grpo
  g, p = cfg.group_size, cfg.prompts_per_step
  first = grpo_rollout(env, model, s, 0, key)
  if not cfg.dynamic_sampling:
    return first, shaped_rewards(first, cfg), {"ds_kept_frac": 1.0, "ds_rounds": 1.0}
  kept: list[RolloutBatch] = []
  dropped: list[RolloutBatch] = []
  n_kept, n_seen, rounds = 0, 0, 0
  batch = first
  while True:
    r = shaped_rewards(batch, cfg)
    keep_P = np.asarray(losses.dynamic_sampling_mask(jnp.asarray(r.reshape(p, g))))
    n_seen += p
    for i in range(p):
      rows = np.arange(i * g, (i + 1) * g)
      (kept if keep_P[i] and n_kept < p else dropped).append(_select_rows(batch, rows))
      n_kept += int(keep_P[i] and n_kept < p)
    rounds += 1
    if n_kept >= p or rounds >= cfg.max_sampling_rounds:
      break
    batch = grpo_rollout(env, model, s, rounds, key)
  filler = dropped[:p - n_kept]
  out = _concat(kept + filler)
  if filler:
    out.mask[n_kept * g:] = 0
  stats = {"ds_kept_frac": n_kept / max(n_seen, 1) if n_kept < p else p / n_seen,
           "ds_rounds": float(rounds), "ds_filled_groups": float(len(filler))}
  return out, shaped_rewards(out, cfg), stats


def grpo_phase(env: Env, graphdef, params, rest):
  """GRPO / DAPO iterations; returns the trained params."""
  job, cfg = env.job, env.job.grpo
  opt = make_optimizer(job.optim)
  state = place_state(TrainState.create(params, opt, job.seed), env.mesh)
  ref_params = params if cfg.kl_coef > 0 else None
  need_old = cfg.epochs * cfg.minibatches > 1 or cfg.is_correction != "none"
  mb_rows = cfg.rows // cfg.minibatches
  n = cfg.max_new_tokens
  lp = job.task.max_prompt_len
  example = {"prompt": np.zeros((mb_rows, lp), np.int32),
             "prompt_mask": np.ones((mb_rows, lp), np.int32),
             "tokens": np.zeros((mb_rows, n), np.int32), "mask": np.ones((mb_rows, n), np.int32),
             "advantages": np.zeros((mb_rows,), np.float32)}
  if need_old:
    example["old_logp"] = np.zeros((mb_rows, n), np.float32)
  if cfg.kl_coef > 0:
    example["ref_logp"] = np.zeros((mb_rows, n), np.float32)
  if cfg.is_correction != "none":
    example["sampler_logp"] = np.zeros((mb_rows, n), np.float32)
  step = jit_step(functools.partial(_steps.grpo_step, graphdef=graphdef, rest=rest,
                                    optimizer=opt, cfg=cfg), state, example, env.mesh)
  logp_fn = jax.jit(functools.partial(_steps.sequence_logprobs, graphdef=graphdef, rest=rest,
                                      temperature=cfg.temperature, impl=cfg.kernel_impl))
  base_key = jax.random.key(job.seed + 1)

  def iteration(state, s):
    key = jax.random.fold_in(base_key, s)
    t0 = time.perf_counter()
    model = merge(graphdef, state.params, rest)
    b, r, ds = dynamic_sample(env, model, s, key)
    t_roll = time.perf_counter() - t0
    adv = losses.group_advantages(jnp.asarray(r.reshape(-1, cfg.group_size)),
                                  scale=cfg.advantage_scale, baseline=cfg.advantage_baseline)
    adv = np.asarray(adv, np.float32).reshape(-1)
    loss_mask = b.mask.copy()
    if cfg.overlong_filter:
      loss_mask[b.truncated] = 0
    # With cfg.pad_multiple the columns of padding every row shares are cut (b.mask decides,
    # so the loss mask and the sequences keep one width); jit compiles once per width.
    seq = _data.trim_padding({"prompt": b.prompt, "prompt_mask": b.prompt_mask,
                              "tokens": b.tokens, "mask": b.mask}, cfg.pad_multiple)
    width = seq["tokens"].shape[1]
    full = {**seq, "mask": loss_mask[:, :width], "advantages": adv}
    if need_old:
      full["old_logp"] = to_host(logp_fn(state.params, seq))
    if cfg.kl_coef > 0:
      full["ref_logp"] = to_host(logp_fn(ref_params, seq))
    if cfg.is_correction != "none":
      full["sampler_logp"] = b.sampler_logp[:, :width]
    ms = []
    perm_key = jax.random.fold_in(key, 10_000)
    for e in range(cfg.epochs):
      perm = np.asarray(jax.random.permutation(jax.random.fold_in(perm_key, e), cfg.rows))
      for i in range(cfg.minibatches):
        rows = perm[i * mb_rows:(i + 1) * mb_rows]
        state, m = step(state, shard_batch({k: v[rows] for k, v in full.items()}, env.mesh))
        ms.append(m)
    metrics = _mean_metrics(ms)
    valid = b.mask.sum(-1) > 0
    metrics.update({
        "reward_mean": float(r.mean()), "reward_std": float(r.std()),
        "accuracy": float(b.correct.mean()),
        "response_length": float(b.lengths.mean()),
        "truncated_frac": float(b.truncated.mean()),
        "adv_mean": float(adv[valid].mean()) if valid.any() else 0.0,
        "adv_std": float(adv[valid].std()) if valid.any() else 0.0,
        "adv_abs_mean": float(np.abs(adv[valid]).mean()) if valid.any() else 0.0,
        "rollout_time": t_roll,
        "tokens": float(b.lengths.sum()), **ds,
    })
    return state, metrics

  state = _run_phase(env, "grpo", state, cfg.steps, iteration)
  return state.params


def run_grpo(job: GRPOJob) -> dict[str, Any]:
  """``rljax grpo``: SFT warm start, held-out accuracy, GRPO, held-out accuracy."""
  return _run_rl(job, grpo_phase)


# --------------------------------------------------------------------------------------------
# PPO


def ppo_phase(env: Env, graphdef, params, rest):
  """PPO iterations with a value head (shared trunk or a separate critic); returns params."""
  job, cfg = env.job, env.job.ppo
  opt = make_optimizer(job.optim)
  d_model = merge(graphdef, params, rest).config.d_model
  tree = {"policy": params, "value_head": _steps.value_head_init(d_model, jax.random.key(0))}
  if not cfg.shared_trunk:
    tree["critic"] = jax.tree.map(jnp.copy, params)
  state = place_state(TrainState.create(tree, opt, job.seed), env.mesh)
  ref_params = params if cfg.kl_coef > 0 else None
  n, lp, r = cfg.max_new_tokens, job.task.max_prompt_len, cfg.rows
  mb = r // cfg.minibatches
  statics = dict(graphdef=graphdef, rest=rest, critic_graphdef=graphdef, critic_rest=rest)
  example = {"prompt": np.zeros((mb, lp), np.int32), "prompt_mask": np.ones((mb, lp), np.int32),
             "tokens": np.zeros((mb, n), np.int32), "mask": np.ones((mb, n), np.int32),
             **{k: np.zeros((mb, n), np.float32)
                for k in ("old_logp", "old_values", "advantages", "returns")}}
  step = jit_step(functools.partial(_steps.ppo_step, optimizer=opt, cfg=cfg, **statics),
                  state, example, env.mesh)
  values_fn = jax.jit(functools.partial(_steps.ppo_values, cfg=cfg, **statics))
  ref_fn = jax.jit(functools.partial(_steps.sequence_logprobs, graphdef=graphdef, rest=rest,
                                     temperature=cfg.temperature, impl=cfg.kernel_impl))
  base_key = jax.random.key(job.seed + 2)

  def iteration(state, s):
    key = jax.random.fold_in(base_key, s)
    t0 = time.perf_counter()
    ex = env.train.batch(s, r)
    prompt, pmask = _data.encode_prompts(env.tok, [env.task.format_prompt(e) for e in ex], lp)
    model = merge(graphdef, state.params["policy"], rest)
    tokens, _, mask = _rollout(model, prompt, pmask, max_new_tokens=n, rng=key,
                                  temperature=cfg.temperature, top_k=None, top_p=None,
                                  eos_id=env.tok.eos_id, pad_id=env.tok.pad_id, num_samples=1,
                                  mesh=rows_mesh(env, r))
    t_roll = time.perf_counter() - t0
    mask = mask.astype(np.int32)
    texts = _data.decode_completions(env.tok, tokens, mask)
    rewards = env.task.rewards(ex, texts).astype(np.float32)
    correct = np.asarray([env.task.is_correct(e, t) for e, t in zip(ex, texts)])
    # cfg.pad_multiple: cut the padding columns every row shares (one compile per width).
    seq = _data.trim_padding({"prompt": prompt, "prompt_mask": pmask, "tokens": tokens,
                              "mask": mask}, cfg.pad_multiple)
    mask = seq["mask"]
    old_logp, old_v = (to_host(a) for a in values_fn(state.params, seq))
    lengths = mask.sum(-1)
    tok_r = np.zeros(mask.shape, np.float32)
    tok_r[np.arange(r), np.maximum(lengths - 1, 0)] = rewards * (lengths > 0)
    kl = 0.0
    if cfg.kl_coef > 0:
      d = (old_logp - to_host(ref_fn(ref_params, seq))) * mask
      tok_r -= cfg.kl_coef * d
      kl = float(d.sum() / max(mask.sum(), 1))
    adv, ret = losses.gae(jnp.asarray(tok_r), jnp.asarray(old_v), jnp.asarray(mask),
                          gamma=cfg.gamma, lam=cfg.lam)
    if cfg.whiten_advantages:
      adv = losses.whiten(adv, jnp.asarray(mask))
    full = {**seq, "old_logp": old_logp, "old_values": old_v, "advantages": np.asarray(adv),
            "returns": np.asarray(ret)}
    ms = []
    for e in range(cfg.epochs):
      perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, 10_000 + e), r))
      for i in range(cfg.minibatches):
        rows = perm[i * mb:(i + 1) * mb]
        state, m = step(state, shard_batch({k: v[rows] for k, v in full.items()}, env.mesh))
        ms.append(m)
    metrics = _mean_metrics(ms)
    metrics.update({"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
                    "accuracy": float(correct.mean()), "response_length": float(lengths.mean()),
                    "kl": kl, "rollout_time": t_roll, "tokens": float(lengths.sum())})
    return state, metrics

  state = _run_phase(env, "ppo", state, cfg.steps, iteration)
  return state.params["policy"]


def run_ppo(job: PPOJob) -> dict[str, Any]:
  """``rljax ppo``: SFT warm start, held-out accuracy, PPO, held-out accuracy."""
  return _run_rl(job, ppo_phase)


# --------------------------------------------------------------------------------------------
# DPO


def build_preference_pairs(env: Env, model, *, num_pairs: int, samples_per_prompt: int,
                           temperature: float, seed: int) -> dict[str, np.ndarray]:
  """Preference pairs from the task: chosen = the reference solution, rejected = an incorrect
  sample of ``model`` (problems where every sample is correct are skipped).

  Returns:
    ``prompt``/``prompt_mask`` ``[M, P]``, ``chosen``/``chosen_mask``,
    ``rejected``/``rejected_mask`` ``[M, N]`` with M <= num_pairs.
  """
  from rljax import eval as rl_eval

  job = env.job
  ex = env.train.batch(0, num_pairs, round_=2_000)
  comps = rl_eval.sample_completions(
      model, env.task, env.tok, ex, num_samples=samples_per_prompt, temperature=temperature,
      batch_size=min(64, num_pairs), max_prompt_len=job.task.max_prompt_len,
      max_new_tokens=job.task.max_answer_len, rng=jax.random.key(seed),
      mesh=rows_mesh(env, min(64, num_pairs)), batch_axis=BATCH_AXES)
  keep_ex, rejected = [], []
  for e, cs in zip(ex, comps):
    wrong = [c for c in cs if not env.task.is_correct(e, c)]
    if wrong:
      keep_ex.append(e)
      rejected.append(wrong[0])
  if not keep_ex:
    raise RuntimeError("DPO: every sampled completion was correct; no rejected completions")
  b = _data.sft_batch(env.task, env.tok, keep_ex, job.task.max_prompt_len,
                      job.task.max_answer_len)
  rej, rej_mask = _data.encode_completions(env.tok, rejected, job.task.max_answer_len,
                                           truncate=True)  # sampled under that limit
  return {"prompt": b["prompt"], "prompt_mask": b["prompt_mask"], "chosen": b["tokens"],
          "chosen_mask": b["mask"], "rejected": rej, "rejected_mask": rej_mask}


def dpo_phase(env: Env, graphdef, params, rest):
  """DPO on pairs built once (cached in the run folder); returns the trained params."""
  job, cfg = env.job, env.job.dpo
  path = os.path.join(job.run_dir, "dpo_pairs.npz")
  if job.resume and os.path.exists(path):
    pairs = dict(np.load(path))
  else:
    pairs = build_preference_pairs(env, merge(graphdef, params, rest), num_pairs=cfg.num_pairs,
                                   samples_per_prompt=cfg.samples_per_prompt,
                                   temperature=cfg.temperature, seed=job.seed + 3)
    if is_primary():
      np.savez(path, **pairs)
  m = pairs["prompt"].shape[0]
  bs = cfg.batch_size
  reps = -(-bs // m)  # tile tiny pair sets up to one batch
  if reps > 1:
    pairs = {k: np.concatenate([v] * reps) for k, v in pairs.items()}
    m = pairs["prompt"].shape[0]
  # Reference log-probs, computed once with the initial policy (padded to whole batches).
  ref_fn = jax.jit(functools.partial(_steps.pair_logprobs, graphdef=graphdef, rest=rest))
  pad = (-m) % bs
  padded = {k: np.concatenate([v, v[:pad]]) for k, v in pairs.items()}
  refs = [ref_fn(params, {k: v[i:i + bs] for k, v in padded.items()})
          for i in range(0, m + pad, bs)]
  pairs["ref_chosen"] = np.concatenate([to_host(c) for c, _ in refs])[:m]
  pairs["ref_rejected"] = np.concatenate([to_host(r) for _, r in refs])[:m]
  opt = make_optimizer(job.optim)
  state = place_state(TrainState.create(params, opt, job.seed), env.mesh)
  step = jit_step(functools.partial(_steps.dpo_step, graphdef=graphdef, rest=rest, optimizer=opt,
                                    cfg=cfg), state, {k: v[:bs] for k, v in pairs.items()},
                  env.mesh)
  per_epoch = m // bs
  base_key = jax.random.key(job.seed + 4)

  def iteration(state, s):
    epoch, i = divmod(s, per_epoch)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(base_key, epoch), m))
    rows = perm[i * bs:(i + 1) * bs]
    # cfg.pad_multiple: cut the padding columns every pair of the step shares.
    batch = _data.trim_padding({k: v[rows] for k, v in pairs.items()}, cfg.pad_multiple)
    state, metrics = step(state, shard_batch(batch, env.mesh))
    metrics = dict(jax.device_get(metrics))
    metrics["num_pairs"] = float(m)
    metrics["tokens"] = float(pairs["chosen_mask"][rows].sum() + pairs["rejected_mask"][rows].sum())
    return state, metrics

  state = _run_phase(env, "dpo", state, cfg.steps, iteration)
  return state.params


def run_dpo(job: DPOJob) -> dict[str, Any]:
  """``rljax dpo``: SFT warm start, held-out accuracy, DPO, held-out accuracy."""
  return _run_rl(job, dpo_phase)


# --------------------------------------------------------------------------------------------
# eval / export of a finished run


_JOB_TYPES = {"SFTJob": SFTJob, "GRPOJob": GRPOJob, "PPOJob": PPOJob, "DPOJob": DPOJob}


def _from_dict(cls, d: dict[str, Any]):
  """Rebuild a (nested) config dataclass from ``dataclasses.asdict`` output."""
  kwargs = {}
  hints = {f.name: f for f in dataclasses.fields(cls)}
  for k, v in d.items():
    if k not in hints:
      continue
    default = hints[k].default_factory() if hints[k].default_factory is not dataclasses.MISSING \
        else hints[k].default
    if dataclasses.is_dataclass(default) and isinstance(v, dict):
      v = _from_dict(type(default), v)
    elif isinstance(v, list):
      v = tuple(v)
    kwargs[k] = v
  return cls(**kwargs)


def load_run(run_dir: str) -> tuple[Job, Env, Any, Any, Any]:
  """``(job, env, graphdef, params, rest)`` of a run folder's newest readable checkpoint."""
  path = os.path.join(run_dir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"run_dir: no config.json in {run_dir!r}")
  with open(path) as f:
    d = json.load(f)
  job = _from_dict(_JOB_TYPES[d.pop("job")], d)
  job = dataclasses.replace(job, run_dir=run_dir, resume=True)
  env = setup(job, training=False)
  graphdef, params, rest = init_policy(env)
  params = load_params(run_dir, params)
  return job, env, graphdef, params, rest


def run_eval(ej) -> dict[str, float]:
  """``rljax eval``: evaluate a run folder's latest policy on held-out problems."""
  job, env, graphdef, params, rest = load_run(ej.run_dir)
  if ej.num_eval is not None:
    diff = job.task.difficulty_kwargs()
    env.held_out = env.task.generate(np.random.default_rng([job.task.eval_seed]), ej.num_eval,
                                     **diff)
  env.job = dataclasses.replace(job, eval=ej.eval)
  return evaluate_policy(env, params, graphdef, rest, seed=ej.seed)


def run_export(xj) -> str:
  """``rljax export``: save a run's latest policy (and tokenizer) as a HF checkpoint folder."""
  from rljax.models import hf

  _, env, graphdef, params, rest = load_run(xj.run_dir)
  hf.save_pretrained(merge(graphdef, params, rest), xj.out)
  if hasattr(env.tok, "save"):
    env.tok.save(xj.out)
  return xj.out
