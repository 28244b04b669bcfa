"""Frozen, typed configuration for the trainers and the ``rljax`` command.

Every config is a ``@dataclasses.dataclass(frozen=True, kw_only=True)`` validated in
``__post_init__``; an invalid value raises ``ValueError`` naming the field. Cross-config
checks that need the device count (batch divisible by the mesh) live in
:func:`validate_job`, which the loops call before anything is written to the run folder.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

Aggregation = Literal[
    "token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"
]


def _require(cond: bool, field: str, msg: str) -> None:
  if not cond:
    raise ValueError(f"{field}: {msg}")


def _positive(obj, prefix: str, *names: str) -> None:
  for n in names:
    v = getattr(obj, n)
    _require(v > 0, f"{prefix}.{n}", f"must be > 0, got {v!r}")


def _nonneg(obj, prefix: str, *names: str) -> None:
  for n in names:
    v = getattr(obj, n)
    _require(v >= 0, f"{prefix}.{n}", f"must be >= 0, got {v!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimConfig:
  """AdamW with linear warm-up, a decay schedule, global-norm clipping and a wd mask."""

  learning_rate: float = 1e-3  # peak learning rate after warm-up
  warmup_steps: int = 10  # linear warm-up from 0 to learning_rate
  schedule: Literal["cosine", "constant", "linear"] = "cosine"  # decay after warm-up
  decay_steps: int = 1000  # steps of the decay after warm-up (cosine/linear)
  min_lr_ratio: float = 0.1  # final learning rate = min_lr_ratio * learning_rate
  b1: float = 0.9  # Adam beta1
  b2: float = 0.99  # Adam beta2
  eps: float = 1e-8  # Adam epsilon
  weight_decay: float = 0.0  # decoupled weight decay (norms, DyT alpha, biases excluded)
  grad_clip: float = 1.0  # global-norm clipping; 0 disables

  def __post_init__(self):
    _positive(self, "optim", "learning_rate", "decay_steps")
    _nonneg(self, "optim", "warmup_steps", "weight_decay", "grad_clip", "eps")
    _require(0.0 <= self.min_lr_ratio <= 1.0, "optim.min_lr_ratio",
             f"must be in [0, 1], got {self.min_lr_ratio}")
    for n in ("b1", "b2"):
      v = getattr(self, n)
      _require(0.0 <= v < 1.0, f"optim.{n}", f"must be in [0, 1), got {v}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeshConfig:
  """Device mesh with axes ("data", "fsdp", "tensor"); -1 on one axis = the rest."""

  data: int = -1  # data-parallel axis size; -1 takes all devices not used by the others
  fsdp: int = 1  # fully-sharded data-parallel axis (parameters and batch sharded)
  tensor: int = 1  # tensor-parallel axis (weight matrices split along heads / mlp)

  def __post_init__(self):
    sizes = {"data": self.data, "fsdp": self.fsdp, "tensor": self.tensor}
    for k, v in sizes.items():
      _require(v == -1 or v >= 1, f"mesh.{k}", f"must be >= 1 or -1, got {v}")
    _require(sum(v == -1 for v in sizes.values()) <= 1, "mesh",
             "at most one axis may be -1")

  def shape(self, num_devices: int) -> dict[str, int]:
    """Resolved axis sizes for ``num_devices`` devices (raises naming the field)."""
    sizes = {"data": self.data, "fsdp": self.fsdp, "tensor": self.tensor}
    known = math.prod(v for v in sizes.values() if v != -1)
    free = [k for k, v in sizes.items() if v == -1]
    if free:
      _require(num_devices % known == 0, f"mesh.{free[0]}",
               f"{num_devices} devices are not divisible by the other axes' product {known}")
      sizes[free[0]] = num_devices // known
    _require(math.prod(sizes.values()) == num_devices, "mesh",
             f"data*fsdp*tensor = {math.prod(sizes.values())} != {num_devices} devices")
    return sizes


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
  """Orbax checkpoints in ``<run_dir>/checkpoints``."""

  every: int = 50  # save every N optimizer steps (and always at the end); 0 = only at the end
  keep: int = 3  # keep the last K checkpoints

  def __post_init__(self):
    _nonneg(self, "checkpoint", "every")
    _positive(self, "checkpoint", "keep")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogConfig:
  """metrics.jsonl + TensorBoard + tqdm + a final PNG of the curves."""

  every: int = 1  # log every N steps
  tensorboard: bool = True  # write TensorBoard event files
  progress: bool = True  # show a tqdm progress bar
  plot: bool = True  # write curves.png at the end

  def __post_init__(self):
    _positive(self, "log", "every")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSpec:
  """The policy: a fresh rljax Transformer, or a Hugging Face checkpoint folder."""

  d_model: int = 64  # model width D
  num_layers: int = 2  # decoder blocks
  num_heads: int = 4  # query heads
  num_kv_heads: int = 4  # key/value heads (GQA when < num_heads)
  mlp_dim: int = 256  # MLP hidden width
  norm: Literal["rmsnorm", "dyt"] = "rmsnorm"  # normalisation layer
  mixer: str = "attention"  # token mixer of every layer, or comma-separated per layer
  residual: Literal["add", "deep_delta"] = "add"  # residual connection
  tie_embeddings: bool = True  # share the embedding and the LM head
  dtype: Literal["float32", "bfloat16"] = "float32"  # activation dtype
  param_dtype: Literal["float32", "bfloat16"] = "float32"  # parameter dtype
  remat: bool = False  # rematerialise blocks in the backward pass
  hf_path: str | None = None  # load a local Hugging Face checkpoint folder instead
  init_from: str | None = None  # start from the params of an rljax run folder (or checkpoint)

  def __post_init__(self):
    _positive(self, "model", "d_model", "num_layers", "num_heads", "num_kv_heads", "mlp_dim")
    _require(self.num_heads % self.num_kv_heads == 0, "model.num_kv_heads",
             f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}")
    _require(self.d_model % self.num_heads == 0, "model.num_heads",
             f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
    _require(len(self.mixers()) in (1, self.num_layers), "model.mixer",
             f"give one mixer or one per layer ({self.num_layers}), got {self.mixer!r}")

  def mixers(self) -> tuple[str, ...]:
    return tuple(m.strip() for m in self.mixer.split(",") if m.strip())


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskSpec:
  """A verifiable task from rljax.tasks, its difficulty, and train / held-out seeds."""

  name: str = "arithmetic_dag"  # task name for rljax.tasks.get_task
  difficulty: tuple[str, ...] = ()  # key=value pairs passed to generate(), e.g. k=2
  train_seed: int = 0  # seed of the training problem stream
  eval_seed: int = 10_000  # seed of the held-out problems (disjoint stream)
  num_eval: int = 128  # held-out problems for before/after accuracy (0 = no evaluation)
  max_prompt_len: int = 64  # prompt tokens (left-padded; a longer prompt is an error)
  max_answer_len: int = 48  # SFT target tokens / max new tokens at eval

  def __post_init__(self):
    _require(bool(self.name), "task.name", "must be non-empty")
    for kv in self.difficulty:
      _require("=" in kv, "task.difficulty", f"entries must be key=value, got {kv!r}")
    _nonneg(self, "task", "num_eval")
    _positive(self, "task", "max_prompt_len", "max_answer_len")

  def difficulty_kwargs(self) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in self.difficulty:
      k, v = kv.split("=", 1)
      out[k.strip()] = _parse_scalar(v.strip())
    return out


def _parse_scalar(v: str) -> object:
  for cast in (int, float):
    try:
      return cast(v)
    except ValueError:
      pass
  if v.lower() in ("true", "false"):
    return v.lower() == "true"
  if "," in v:
    return tuple(_parse_scalar(x) for x in v.split(","))
  return v


@dataclasses.dataclass(frozen=True, kw_only=True)
class SFTConfig:
  """Supervised fine-tuning: next-token loss on the answer tokens of prompt/answer pairs."""

  steps: int = 200  # optimizer steps (0 skips SFT)
  batch_size: int = 32  # rows per step
  # 0: every batch padded to task.max_prompt_len / max_answer_len (one compiled shape). m > 0:
  # each batch's prompts and answers padded to the next multiple of m of its longest row
  # (capped at those maxima): the same loss on fewer padded tokens, one compile per shape seen.
  pad_multiple: int = 0

  def __post_init__(self):
    _nonneg(self, "sft", "steps", "pad_multiple")
    _positive(self, "sft", "batch_size")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GRPOConfig:
  """GRPO / DAPO hyper-parameters. Symbols follow arXiv 2503.14476 (DAPO) and PAPERS.md."""

  steps: int = 100  # policy iterations (rollout + update epochs)
  prompts_per_step: int = 16  # P, prompts per rollout batch
  group_size: int = 8  # G, completions per prompt
  max_new_tokens: int = 48  # generation length cap
  temperature: float = 1.0  # sampling temperature (also used for the trainer's log-probs)
  top_k: int | None = None  # top-k sampling filter
  top_p: float | None = None  # nucleus sampling filter
  epochs: int = 1  # passes over each rollout batch
  minibatches: int = 1  # optimizer steps per epoch (rows split evenly)
  eps_low: float = 0.2  # lower clip, 1 - eps_low
  eps_high: float = 0.28  # upper clip, 1 + eps_high (clip-higher when > eps_low)
  dual_clip: float | None = None  # dual clip c for A < 0 (Ye et al. 2020), None disables
  aggregation: Aggregation = "token-mean"  # loss reduction (see rljax.losses.aggregate)
  advantage_scale: Literal["std", "none"] = "std"  # GRPO std scaling / Dr. GRPO none
  advantage_baseline: Literal["mean", "leave_one_out"] = "mean"  # mean or RLOO
  kl_coef: float = 0.0  # KL to the frozen reference policy (0 disables; DAPO uses none)
  kl_kind: Literal["k1", "k2", "k3", "k3+"] = "k3"  # KL estimator
  entropy_top_rho: float = 1.0  # keep this fraction of tokens by entropy (0.2 = 80/20 paper)
  entropy_mask_side: Literal["top", "bottom"] = "top"  # "bottom" trains on the complement
  entropy_adv_alpha: float = 0.0  # entropy advantage alpha (arXiv 2506.14758); 0 disables
  entropy_adv_kappa: float = 2.0  # entropy advantage clip kappa
  overlong_max_len: int | None = None  # DAPO soft overlong punishment L_max; None disables
  overlong_cache_len: int = 8  # L_cache of the soft overlong punishment
  overlong_filter: bool = False  # mask the loss of truncated (no EOS) samples
  dynamic_sampling: bool = False  # drop groups with all-equal rewards and resample
  max_sampling_rounds: int = 3  # cap on generation rounds per step for dynamic sampling
  is_correction: Literal["none", "tis"] = "none"  # truncated IS weight sampler -> trainer
  is_cap: float = 2.0  # cap of the truncated importance weight
  kernel_impl: Literal["auto", "reference", "xla", "pallas"] = "auto"  # fused logp/entropy impl
  # 0: update batches keep the rollout's shapes (max_prompt_len + max_new_tokens). m > 0: each
  # step's batch is cut to the next multiple of m of its longest prompt / completion: the same
  # loss (Dr. GRPO's constant stays max_new_tokens) on fewer padded tokens, a compile per shape.
  pad_multiple: int = 0

  def __post_init__(self):
    p = "grpo"
    _positive(self, p, "prompts_per_step", "group_size", "max_new_tokens", "epochs",
              "minibatches", "max_sampling_rounds", "overlong_cache_len", "is_cap")
    _nonneg(self, p, "steps", "temperature", "eps_low", "eps_high", "kl_coef",
            "entropy_adv_alpha", "pad_multiple")
    if self.advantage_scale == "std":
      _require(self.group_size >= 2, f"{p}.group_size",
               f"must be >= 2 with advantage_scale='std' (std of one sample), "
               f"got {self.group_size}")
    if self.advantage_baseline == "leave_one_out":
      _require(self.group_size >= 2, f"{p}.group_size",
               f"must be >= 2 with advantage_baseline='leave_one_out', got {self.group_size}")
    _require(self.eps_low < 1.0, f"{p}.eps_low", f"must be < 1, got {self.eps_low}")
    if self.dual_clip is not None:
      _require(self.dual_clip > 1.0, f"{p}.dual_clip", f"must be > 1, got {self.dual_clip}")
    _require(0.0 < self.entropy_top_rho <= 1.0, f"{p}.entropy_top_rho",
             f"must be in (0, 1], got {self.entropy_top_rho}")
    _require(self.entropy_adv_kappa > 0, f"{p}.entropy_adv_kappa",
             f"must be > 0, got {self.entropy_adv_kappa}")
    if self.top_p is not None:
      _require(0.0 < self.top_p <= 1.0, f"{p}.top_p", f"must be in (0, 1], got {self.top_p}")
    if self.top_k is not None:
      _require(self.top_k >= 1, f"{p}.top_k", f"must be >= 1, got {self.top_k}")
    if self.overlong_max_len is not None:
      _require(self.overlong_max_len > self.overlong_cache_len, f"{p}.overlong_max_len",
               f"must exceed overlong_cache_len={self.overlong_cache_len}, "
               f"got {self.overlong_max_len}")
    rows = self.prompts_per_step * self.group_size
    _require(rows % self.minibatches == 0, f"{p}.minibatches",
             f"prompts_per_step*group_size = {rows} rows are not divisible by {self.minibatches}")

  @property
  def rows(self) -> int:
    return self.prompts_per_step * self.group_size


@dataclasses.dataclass(frozen=True, kw_only=True)
class PPOConfig:
  """PPO with a learned critic: GAE, whitened advantages, clipped value loss."""

  steps: int = 100  # policy iterations
  prompts_per_step: int = 32  # prompts per rollout batch (one sample each)
  max_new_tokens: int = 48  # generation length cap
  temperature: float = 1.0  # sampling temperature
  epochs: int = 2  # passes over each rollout batch
  minibatches: int = 1  # optimizer steps per epoch
  eps_low: float = 0.2  # lower policy clip
  eps_high: float = 0.2  # upper policy clip
  value_clip: float = 0.2  # clip range of the value loss
  value_coef: float = 0.5  # weight of the value loss
  gamma: float = 1.0  # discount
  lam: float = 0.95  # GAE lambda
  whiten_advantages: bool = True  # whiten advantages over valid tokens
  shared_trunk: bool = True  # value head on the policy's hidden states (else a separate critic)
  kl_coef: float = 0.0  # k3 KL to the frozen reference policy
  entropy_adv_alpha: float = 0.0  # entropy advantage alpha (0.1 in arXiv 2506.14758)
  entropy_adv_kappa: float = 2.0  # entropy advantage kappa
  kernel_impl: Literal["auto", "reference", "xla", "pallas"] = "auto"
  # As GRPOConfig.pad_multiple: 0 keeps the rollout's shapes; m > 0 cuts each step's batch to
  # the next multiple of m of its longest prompt / completion (GAE skips padding either way).
  pad_multiple: int = 0

  def __post_init__(self):
    p = "ppo"
    _positive(self, p, "prompts_per_step", "max_new_tokens", "epochs", "minibatches",
              "entropy_adv_kappa")
    _nonneg(self, p, "steps", "temperature", "eps_low", "eps_high", "value_clip", "value_coef",
            "kl_coef", "entropy_adv_alpha", "pad_multiple")
    _require(0.0 <= self.gamma <= 1.0, f"{p}.gamma", f"must be in [0, 1], got {self.gamma}")
    _require(0.0 <= self.lam <= 1.0, f"{p}.lam", f"must be in [0, 1], got {self.lam}")
    _require(self.prompts_per_step % self.minibatches == 0, f"{p}.minibatches",
             f"prompts_per_step={self.prompts_per_step} not divisible by {self.minibatches}")

  @property
  def rows(self) -> int:
    return self.prompts_per_step


@dataclasses.dataclass(frozen=True, kw_only=True)
class DPOConfig:
  """DPO on preference pairs (chosen = reference solution, rejected = a wrong policy sample)."""

  steps: int = 100  # optimizer steps
  batch_size: int = 16  # pairs per step
  beta: float = 0.1  # DPO temperature
  kind: Literal["sigmoid", "robust", "hinge", "ipo"] = "sigmoid"  # loss variant
  label_smoothing: float = 0.0  # conservative DPO / robust DPO epsilon
  num_pairs: int = 256  # preference pairs built once before training
  samples_per_prompt: int = 4  # policy samples drawn to find a rejected completion
  temperature: float = 1.0  # sampling temperature when building pairs
  # As GRPOConfig.pad_multiple: 0 keeps the pairs' shapes (max_prompt_len + max_answer_len);
  # m > 0 cuts each step's pairs to the next multiple of m of their longest prompt / completion.
  pad_multiple: int = 0

  def __post_init__(self):
    p = "dpo"
    _positive(self, p, "batch_size", "beta", "num_pairs", "samples_per_prompt")
    _nonneg(self, p, "steps", "temperature", "pad_multiple")
    _require(0.0 <= self.label_smoothing < 0.5, f"{p}.label_smoothing",
             f"must be in [0, 0.5), got {self.label_smoothing}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig:
  """Held-out evaluation: pass@k from n samples per problem (greedy pass@1 when n = 1)."""

  num_samples: int = 1  # samples per problem (1 + temperature 0 = greedy pass@1)
  temperature: float = 0.0  # 0 = greedy
  ks: tuple[int, ...] = (1,)  # pass@k values to report
  batch_size: int = 64  # prompts per generation call

  def __post_init__(self):
    _positive(self, "eval", "num_samples", "batch_size")
    _nonneg(self, "eval", "temperature")
    for k in self.ks:
      _require(1 <= k <= self.num_samples, "eval.ks",
               f"every k must be in [1, num_samples={self.num_samples}], got {k}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
  """Fields shared by every training subcommand."""

  run_dir: str = "runs/latest"  # run folder (checkpoints, metrics.jsonl, events, curves.png)
  seed: int = 0  # model init and sampling seed
  resume: bool = False  # continue from the latest valid checkpoint in run_dir
  overwrite: bool = False  # allow a non-empty run_dir without --resume
  model: ModelSpec = dataclasses.field(default_factory=ModelSpec)
  task: TaskSpec = dataclasses.field(default_factory=TaskSpec)
  optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
  mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
  checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
  log: LogConfig = dataclasses.field(default_factory=LogConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

  def __post_init__(self):
    _require(bool(self.run_dir), "run_dir", "must be non-empty")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SFTJob(Job):
  """``rljax sft``: supervised warm start on a task's worked solutions."""

  sft: SFTConfig = dataclasses.field(default_factory=SFTConfig)


@dataclasses.dataclass(frozen=True, kw_only=True)
class GRPOJob(Job):
  """``rljax grpo``: optional SFT warm start, then GRPO / DAPO, with before/after accuracy."""

  sft: SFTConfig = dataclasses.field(default_factory=SFTConfig)  # warm start (steps=0 skips)
  sft_optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)  # warm-start optimizer
  grpo: GRPOConfig = dataclasses.field(default_factory=GRPOConfig)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PPOJob(Job):
  """``rljax ppo``: optional SFT warm start, then PPO with a critic."""

  sft: SFTConfig = dataclasses.field(default_factory=SFTConfig)
  sft_optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
  ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DPOJob(Job):
  """``rljax dpo``: optional SFT warm start, then DPO on pairs built from the task."""

  sft: SFTConfig = dataclasses.field(default_factory=SFTConfig)
  sft_optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
  dpo: DPOConfig = dataclasses.field(default_factory=DPOConfig)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalJob:
  """``rljax eval``: held-out accuracy / pass@k of the latest policy of a run folder."""

  run_dir: str = "runs/cpu-tiny"  # run folder (its config.json gives the model and the task)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  num_eval: int | None = None  # held-out problems (default: the run's task.num_eval)
  seed: int = 0  # sampling seed

  def __post_init__(self):
    if self.num_eval is not None:
      _require(self.num_eval > 0, "num_eval", f"must be > 0, got {self.num_eval}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportJob:
  """``rljax export``: write the latest policy of a run folder as a Hugging Face checkpoint."""

  run_dir: str = "runs/cpu-tiny"  # run folder to export
  out: str = "runs/cpu-tiny/hf"  # output folder (config.json, model.safetensors, tokenizer)

  def __post_init__(self):
    _require(bool(self.out), "out", "must be non-empty")
