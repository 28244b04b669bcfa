"""SFT memorizes, RL generalizes (arXiv 2501.17161) on GeneralPoints, at small scale.

Claim: after an SFT start, more SFT on the in-distribution rule (J, Q, K = 10) keeps fitting
that rule and degrades out-of-distribution accuracy (J, Q, K = 11, 12, 13), while RL on the same
in-distribution hands improves OOD; RL without SFT fails on the output format.

The paper's models bring pre-training that lets them read a rule stated in the prompt; a model
trained from scratch on the ID rule alone never solves an OOD hand (OOD pass@1 0.000 for every
arm in this study's first version: a floor effect, not evidence). So the base model here is
pre-trained by SFT on hands whose prompt states a random rule (``faces="random"``: J, Q, K each
valued 1..13, never the OOD triple 11 12 13), and learns to apply the stated rule. From it, on
ID-rule hands only:
  (a) more SFT (constant learning rate);
  (b) GRPO;
  (c) GRPO from scratch (a random-init model).
With ``base_per_seed`` (the gpu / tpu presets) every seed pre-trains its own base (the base's
seed is the arms' seed), so the spread over seeds holds the base's variation as well as RL's:
with one base shared by every seed, re-training it with the same recipe (only the float
rounding changed, by padding batches to their longest row) turned GRPO's OOD pass@1 from a gain
(0.041 -> 0.061) into a loss (0.047 -> 0.034). The cpu preset shares one base (the first
seed's) to fit its 20-minute budget: a base takes about 8 of its minutes, and one trained on
half the hands (batch 16) could not read the rule (ID pass@1 0.021, OOD 0.003: a floor). Its
seed spread is then the arms' alone, and its README says so.
Each arm trains in ``chunks`` equal chunks and is evaluated after every chunk on ID and OOD
hands: pass@1 from n samples at T = 1; the rule-following probe ``numbers_read`` (the
completion's ``Numbers:`` line lists the hand's numbers under the prompt's rule, the analogue
of the paper's card-recognition accuracy); and the fraction of well-formed answers. A chunk is
one run folder initialised from the previous chunk's parameters (``model.init_from``), so the
Adam moments restart at every chunk boundary.

Run: ``python experiments/sft_vs_rl.py --preset cpu`` (see experiments/README.md).
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _rl as R

from rljax.train import (
  GRPOConfig,
  OptimConfig,
  PPOConfig,
  SFTConfig,
  TaskSpec,
)

NAME = "sft_vs_rl"


def preset_for(name: str) -> tuple[R.RLPreset, dict]:
  """The preset and this study's extras (chunks, steps per chunk for SFT and RL, the constant
  learning rate of the more-SFT arm, samples per hand of the final evaluation).
  ``preset.sft`` is the base model's pre-training."""
  if name == "smoke":
    p = R.RLPreset(
        model=R.TINY_MODEL,
        task=TaskSpec(name="general_points", num_eval=4, max_prompt_len=96, max_answer_len=96),
        sft=SFTConfig(steps=4, batch_size=8),
        sft_optim=OptimConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=4),
        optim=OptimConfig(learning_rate=1e-3, warmup_steps=0, schedule="constant"),
        grpo=GRPOConfig(steps=1, prompts_per_step=2, group_size=4, max_new_tokens=32),
        ppo=PPOConfig(steps=1, prompts_per_step=8, max_new_tokens=32, epochs=1),
        seeds=(0,), eval_problems=4, eval_samples=2, eval_batch=4, max_new_tokens=32)
    return p, {"chunks": 2, "sft_chunk": 2, "rl_chunk": 1, "sft_lr": 1e-3,
               "final_samples": 2, "base_per_seed": False}
  if name == "cpu":
    p = R.RLPreset(
        model=R.CPU_MODEL,
        task=TaskSpec(name="general_points", num_eval=32, max_prompt_len=96, max_answer_len=96),
        # One base for both seeds (was a base per seed) to fit the 2-core 20-minute budget: that
        # version took 31.1 min (two 9.7-min bases, the arms 9.0 min; results folder in git at
        # commit 677b4e9). An SFT step's time is linear in the batch, and two bases on batch
        # 16 with 3 arm chunks (18.5 min in all, 2026-12-03) read no rule: base ID / OOD
        # pass@1 0.021 / 0.003 (0.186 / 0.029 on batch 32), every arm at the floor.
        sft=SFTConfig(steps=3000, batch_size=32, pad_multiple=16),
        sft_optim=OptimConfig(learning_rate=1e-2, warmup_steps=20, decay_steps=3000,
                              min_lr_ratio=0.05),
        optim=R.SHARED_RL_OPTIM,
        grpo=GRPOConfig(steps=15, prompts_per_step=16, group_size=8, max_new_tokens=96,
                        pad_multiple=16),
        seeds=(0, 1), eval_problems=64, eval_samples=4, eval_batch=16, max_new_tokens=96)
    return p, {"chunks": 4, "sft_chunk": 50, "rl_chunk": 15, "sft_lr": 1e-3,
               "final_samples": 16, "base_per_seed": False}
  p = R.RLPreset(
      model=R.GPU_MODEL,
      task=TaskSpec(name="general_points", num_eval=256, max_prompt_len=128,
                    max_answer_len=128),
      sft=SFTConfig(steps=4000, batch_size=128),
      sft_optim=OptimConfig(learning_rate=1e-3, warmup_steps=100, decay_steps=4000),
      optim=OptimConfig(learning_rate=1e-5, warmup_steps=0, schedule="constant"),
      grpo=GRPOConfig(steps=50, prompts_per_step=64, group_size=8, max_new_tokens=128,
                      kernel_impl=R.ACCEL_KERNEL),
      seeds=(0, 1, 2), eval_problems=256, eval_samples=8, eval_batch=32, max_new_tokens=128)
  return p, {"chunks": 6, "sft_chunk": 200, "rl_chunk": 50, "sft_lr": 1e-4,
             "final_samples": 32, "base_per_seed": True}


PRETRAIN_FACES = ("faces=random",)  # the base model's rules: J, Q, K drawn per hand, never OOD
SPLITS = ("in_distribution", "ood")
METRICS = ("pass@1", "numbers_read", "format_ok")
ARMS = ("more SFT", "GRPO from base", "GRPO from scratch")


def base_seeds(preset: R.RLPreset, extra: dict) -> tuple[int, ...]:
  """The seeds whose base models are pre-trained: every seed's, or only the first's."""
  return tuple(preset.seeds) if extra["base_per_seed"] else tuple(preset.seeds[:1])


def base_index(i: int, extra: dict) -> int:
  """Which of ``base_seeds``' bases the ``i``-th seed's arms start from."""
  return i if extra["base_per_seed"] else 0


def pretrain_task(task: TaskSpec) -> TaskSpec:
  """The base model's training task: ``task`` with a random rule per hand."""
  return dataclasses.replace(task, difficulty=(*task.difficulty, *PRETRAIN_FACES))


def _evaluate(run_dir: str, preset: R.RLPreset, sets: dict, seed: int,
              n: int | None = None) -> dict:
  out = {}
  for s, ex in sets.items():
    e = R.eval_pass(run_dir, preset, ex, seed, n=n, probes=("numbers_read",))
    out[s] = {"pass@1": e["pass"][0], "format_ok": e["format_ok"],
              "numbers_read": e["probes"]["numbers_read"],
              "reward_mean": e["reward_mean"], "c": e["c"], "n": e["n"]}
  return out


def final_evals(bases: list[dict], arms: dict, preset: R.RLPreset, sets: dict, n: int) -> dict:
  """Every seed's base and every arm's last checkpoint, re-evaluated with ``n`` samples per hand
  (the verdict's numbers; the per-chunk curves use ``preset.eval_samples``)."""
  out = {"base": [_evaluate(b["run_dir"], preset, sets, 600 + b["seed"], n=n) for b in bases]}
  for arm, runs in arms.items():
    out[arm] = [_evaluate(r["points"][-1]["run_dir"], preset, sets, 700 + r["seed"], n=n)
                for r in runs]
  return out


def final_summary(final: dict, sets: dict) -> dict:
  """Per arm (the bases too) and ``<split>/<metric>``: mean and std over seeds, and the
  completions behind each mean (hands x samples x seeds, for the sampling error)."""
  out = {}
  for arm, evs in final.items():
    out[arm] = {}
    for s in SPLITS:
      samples = len(sets[s]) * evs[0][s]["n"] * len(evs)
      for key in METRICS:
        v = np.asarray([e[s][key] for e in evs])
        out[arm][f"{s}/{key}"] = {"mean": float(v.mean()), "std": float(v.std()),
                                  "samples": samples}
  return out


def main(argv=None) -> str:
  args = R.parse_args(NAME, __doc__, argv)
  preset, extra = preset_for(args.preset)
  preset = R.apply_seeds(preset, args.seeds)
  progress = not args.no_progress
  t = C.Stopwatch()
  sets = {"in_distribution": R.problems(preset.task, preset.eval_problems, ood=False),
          "ood": R.problems(preset.task, preset.eval_problems, ood=True)}
  # One base per seed where the preset affords it: the bases differ by their pre-training's
  # seed, so the seed spread holds the base's own variation (one shared base made the verdict
  # hinge on it, see the docstring); otherwise the first seed's base serves every seed.
  bases = [R.sft_checkpoint(args.workdir, preset, seed, task=pretrain_task(preset.task),
                            progress=progress) for seed in base_seeds(preset, extra)]
  base_evals = [_evaluate(b["run_dir"], preset, sets, 500 + b["seed"]) for b in bases]
  sft_more_optim = OptimConfig(learning_rate=extra["sft_lr"], warmup_steps=0,
                               schedule="constant")
  grpo = dataclasses.replace(preset.grpo, steps=extra["rl_chunk"])
  preset_rl = dataclasses.replace(preset, grpo=grpo)
  arms: dict[str, list] = {a: [] for a in ARMS}
  for i, seed in enumerate(preset.seeds):
    base, base_eval = bases[base_index(i, extra)], base_evals[base_index(i, extra)]
    for arm in arms:
      prev = None if arm == "GRPO from scratch" else base["run_dir"]
      points = []
      if prev is not None:
        points.append({"step": 0, "eval": base_eval, "run_dir": prev})
      for c in range(extra["chunks"]):
        if arm == "more SFT":
          run = R.sft_checkpoint(args.workdir, preset, seed + 1000 * (c + 1), init_from=prev,
                                 steps=extra["sft_chunk"], optim=sft_more_optim,
                                 progress=progress)
          step = (c + 1) * extra["sft_chunk"]
        else:
          tag = "grpo_scratch" if arm == "GRPO from scratch" else "grpo_base"
          run = R.grpo_arm(args.workdir, NAME, f"{tag}-c{c}", preset_rl, seed, prev,
                           progress=progress)
          step = (c + 1) * extra["rl_chunk"]
        prev = run["run_dir"]
        points.append({"step": step, "run_dir": prev, "wall_s": run.get("wall_s"),
                       "eval": _evaluate(prev, preset, sets, seed + 100 + c)})
      arms[arm].append({"seed": seed, "points": points})
  summary = summarize(arms)
  final_raw = final_evals(bases, arms, preset, sets, extra["final_samples"])
  final = final_summary(final_raw, sets)
  wall = t()  # one reading for results.json and the README, so a re-render matches
  path = R.write_results(NAME, args.out, preset_name=args.preset, preset=preset, arms=arms,
                         summary=summary, wall_s=wall,
                         extra={"bases": [{k: v for k, v in b.items() if k != "config"}
                                          for b in bases],
                                "base_task": pretrain_task(preset.task),
                                "base_evals": base_evals, "final": final,
                                "final_per_seed": final_raw, "study_extra": extra,
                                "command": R.command(NAME, args.preset)})
  _figure(path, summary, extra)
  _readme(path, args.preset, preset, extra, final, bases, wall, arms, final_raw)
  return path


def summarize(arms: dict[str, list]) -> dict:
  """Per arm and ``<split>/<metric>``: steps, mean and std over seeds at every eval point."""
  summary = {}
  for arm, runs in arms.items():
    summary[arm] = {}
    for s in SPLITS:
      for key in METRICS:
        v = np.asarray([[p["eval"][s][key] for p in r["points"]] for r in runs])
        summary[arm][f"{s}/{key}"] = {"steps": [p["step"] for p in runs[0]["points"]],
                                      "mean": v.mean(0), "std": v.std(0)}
  return summary


PANELS = [("in_distribution", "pass@1", "ID pass@1"), ("ood", "pass@1", "OOD pass@1"),
          ("ood", "numbers_read", "OOD rule read (Numbers line correct)"),
          ("ood", "format_ok", "OOD well-formed answers")]


def _figure(path: str, summary: dict, extra: dict) -> None:
  plt = C.plt()
  fig, axes = plt.subplots(1, len(PANELS), figsize=(19, 3.9))
  for ax, (s, key, title) in zip(axes, PANELS):
    top = 0.0
    for arm, d in summary.items():
      e = d[f"{s}/{key}"]
      x = np.arange(len(e["steps"])) + (0 if e["steps"][0] == 0 else 1)
      ax.errorbar(x, e["mean"], yerr=e["std"], marker="o", capsize=3, label=arm)
      top = max(top, float(np.max(np.asarray(e["mean"]) + np.asarray(e["std"]))))
    ax.set_xlabel(f"chunk (SFT {extra['sft_chunk']} / RL {extra['rl_chunk']} steps each)")
    ax.set_xticks(range(extra["chunks"] + 1))
    ax.set_ylabel(key)
    ax.set_title(title, fontsize=10)
    # small accuracies (OOD pass@1) get a zoomed axis instead of a flat line at the bottom
    ax.set_ylim(-0.02 * min(1.0, max(1.3 * top, 0.1)), min(1.02, max(1.3 * top, 0.1)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(path, "id_ood.png"), dpi=120)
  plt.close(fig)


def _verdict(preset_name: str, ns: int, final: dict) -> str:
  """The paper's three sub-claims on the final evaluation. A difference counts when it exceeds
  the larger of the seed std (0.01 at least with several seeds) and its sampling error (the
  binomial standard errors of the two pass@1 estimates, combined; with a base per seed the
  base has a seed std too, a shared one only the 0.01 floor and its sampling error): more SFT
  lowers OOD pass@1 below the base's; GRPO ends above more SFT on OOD and not below the base;
  GRPO from scratch fails on format. An OOD base below 0.02 is named a floor effect."""
  if preset_name == "smoke":
    return "not yet run (smoke preset: plumbing check only; the numbers mean nothing)."
  floor = 0.01 if ns > 1 else 0.0

  def get(arm, key):
    d = final[arm][key]
    se = float(np.sqrt(max(d["mean"] * (1 - d["mean"]), 1e-12) / d["samples"]))
    return d["mean"], max(d["std"], floor), se

  def beats(a, b):
    """(a - b, the threshold it must exceed, a - b in combined standard errors)."""
    gap = a[0] - b[0]
    se = float(np.hypot(a[2], b[2]))
    return gap, max(a[1], b[1], se), gap / se

  base = get("base", "ood/pass@1")
  sft = get("more SFT", "ood/pass@1")
  rl = get("GRPO from base", "ood/pass@1")
  b_read = final["base"]["ood/numbers_read"]["mean"]
  sft_read = final["more SFT"]["ood/numbers_read"]["mean"]
  rl_read = final["GRPO from base"]["ood/numbers_read"]["mean"]
  fmt_scratch = final["GRPO from scratch"]["ood/format_ok"]["mean"]
  acc_scratch = final["GRPO from scratch"]["in_distribution/pass@1"]["mean"]
  fmt_ok = fmt_scratch < 0.5 and acc_scratch < 0.05
  fmt_part = (f"RL without SFT {'fails' if fmt_ok else 'does not fail'} on format "
              f"({fmt_scratch:.2f} well-formed OOD answers, ID pass@1 {acc_scratch:.3f})")
  read_part = (f"OOD rule read {b_read:.2f} at the base -> {sft_read:.2f} after more SFT, "
               f"{rl_read:.2f} after GRPO")
  r_base, r_sft, r_rl = (get(a, "ood/numbers_read") for a in ("base", "more SFT",
                                                              "GRPO from base"))
  id_sft = final["more SFT"]["in_distribution/numbers_read"]["mean"]
  id_rl = final["GRPO from base"]["in_distribution/numbers_read"]["mean"]
  sft_read_up = beats(r_sft, r_base)
  rl_read_up = beats(r_rl, r_base)
  if rl_read_up[0] > rl_read_up[1] and sft_read_up[0] <= sft_read_up[1]:
    read_part += (f" (both arms learn to apply the ID rule, ID rule read {id_sft:.2f} / "
                  f"{id_rl:.2f}, but only GRPO's gain carries over to the OOD rule: the "
                  "memorize / generalize contrast, seen in rule following)")
  if max(base[0], sft[0], rl[0]) < 0.02:
    return (f"not reproduced: OOD pass@1 is {base[0]:.3f} at the base and {sft[0]:.3f} / "
            f"{rl[0]:.3f} after more SFT / GRPO, a floor effect, so the SFT-vs-RL contrast "
            f"cannot show in accuracy; {read_part}; {fmt_part}.")
  drop, drop_thr, drop_z = beats(base, sft)
  lead, lead_thr, lead_z = beats(rl, sft)
  keep, keep_thr, _ = beats(base, rl)
  sft_hurts = drop > drop_thr
  rl_better = lead > lead_thr
  rl_keeps = keep <= keep_thr
  ok = [sft_hurts, rl_keeps and rl_better, fmt_ok]
  what = "reproduced" if all(ok) else "partly reproduced" if any(ok) else "not reproduced"
  return (f"{what}: OOD pass@1 {base[0]:.3f} at the base -> {sft[0]:.3f} after more SFT "
          f"({'a drop' if sft_hurts else 'no drop'} beyond the noise: {-drop:+.3f}, "
          f"{drop_z:.1f} standard errors) vs {rl[0]:.3f} after GRPO "
          f"({'above' if rl_better else 'not above'} more SFT beyond the noise: {lead:+.3f}, "
          f"{lead_z:.1f} standard errors{'' if rl_keeps else f'; below the base: {-keep:+.3f}'}); "
          f"{read_part}; {fmt_part}.")


TABLE_KEYS = ("in_distribution/pass@1", "ood/pass@1", "in_distribution/numbers_read",
              "ood/numbers_read", "ood/format_ok")


def per_seed_line(final_raw: dict | None, seeds, extra: dict) -> str:
  """One README sentence: each seed's OOD pass@1 at its base and after more SFT / GRPO (with a
  base per seed the bases differ, so the paired changes read differently from the means)."""
  if not final_raw:
    return ""
  arms = ("base", "more SFT", "GRPO from base")
  parts = [f"seed {s} {final_raw['base'][base_index(i, extra)]['ood']['pass@1']:.3f} -> "
           f"{final_raw[arms[1]][i]['ood']['pass@1']:.3f} / "
           f"{final_raw[arms[2]][i]['ood']['pass@1']:.3f}" for i, s in enumerate(seeds)]
  return ("\n\nPer seed, OOD pass@1 at its base -> after more SFT / after GRPO: "
          + "; ".join(parts) + ".")


# The cpu preset's version before it was cut to fit 20 minutes (results folder in git at commit
# 677b4e9): what it measured, so the smaller run can be read against it.
PREVIOUS_CPU = """\
Before 2026-12-03 the cpu preset pre-trained a base per seed: 31.1 min from scratch on this VM
kind, over the 20-minute budget (results folder at commit 677b4e9). Its final table (n=16, two
seeds, each from its own base): base ID / OOD pass@1 0.186 / 0.029 (OOD rule read 0.09), more
SFT (200 steps) 0.705 / 0.016 (0.21), GRPO from base (60 steps) 0.300 / 0.024 (0.14), GRPO from
scratch 0.000 / 0.000 (0.18 well-formed OOD answers); verdict partly reproduced: RL from
scratch failed on format, and more SFT's OOD drop and GRPO's lead over it were within the noise
(the two bases' OOD pass@1, 0.047 and 0.011, differed more than any arm moved them). Two bases
on batch 16 instead (half the hands; 3 chunks per arm, 18.5 min in all, 2026-12-03) could not
read the rule: base ID / OOD pass@1 0.021 / 0.003, more SFT 0.210 / 0.007, GRPO 0.022 / 0.003,
a floor; so this preset shares one batch-32 base."""


def _readme(path, preset_name, preset, extra, final, bases, wall, arms,
            final_raw=None) -> None:
  ns = len(preset.seeds)
  train_min = sum(p.get("wall_s") or 0.0 for runs in arms.values() for r in runs
                  for p in r["points"]) / 60
  steps = {"base": 0, "more SFT": extra["chunks"] * extra["sft_chunk"],
           "GRPO from base": extra["chunks"] * extra["rl_chunk"],
           "GRPO from scratch": extra["chunks"] * extra["rl_chunk"]}
  rows = []
  for arm, d in final.items():
    label = "base (pre-trained on random rules)" if arm == "base" else arm
    rows.append([label, str(steps[arm]),
                 *(R.pm(d[k]["mean"], d[k]["std"], ns) for k in TABLE_KEYS)])
  verdict = _verdict(preset_name, ns, final)
  seed_line = per_seed_line(final_raw, preset.seeds, extra)
  m = preset.model
  base_walls = [b["wall_s"] / 60 for b in bases if b.get("wall_s")]
  base_time = (f", {' / '.join(f'{w:.1f}' for w in base_walls)} min" if base_walls else "")
  base_what = (f"one base per seed{base_time}" if extra["base_per_seed"] else
               f"one base{base_time}, seed {preset.seeds[0]}'s, shared by every seed, so the "
               "seed spread below is the arms' alone, not the base's")
  previous = f"\n{PREVIOUS_CPU}\n" if preset_name == "cpu" else ""
  text = f"""# SFT memorizes, RL generalizes: GeneralPoints (arXiv 2501.17161)

Claim (paper): RL (PPO after SFT) improves OOD (GP-L 11.5 -> 15.0) while SFT collapses OOD
(3.4); RL without SFT fails because the base model cannot follow the output format.

Setup: GeneralPoints (4 cards, make 24); the prompt states the rule (`J=10 Q=10 K=10.` in
distribution, `J=11 Q=12 K=13.` out of distribution, OOD hands hold a face card); single-turn
(no sequential revision). Model {m.num_layers} x {m.d_model} from scratch. A model trained on the
ID rule alone never solves an OOD hand (the first version of this study: OOD pass@1 0.000 for
every arm), so the base model stands in for the paper's pre-training: SFT for {preset.sft.steps}
steps on hands whose prompt states a random rule (J, Q, K each 1..13, never 11 12 13; batch
{preset.sft.batch_size}, lr {preset.sft_optim.learning_rate:g} cosine; {base_what}).
From it, on ID-rule hands only:
{extra["chunks"]} chunks of {extra["sft_chunk"]} SFT steps (batch {preset.sft.batch_size}, constant
lr {extra["sft_lr"]:g}) or {extra["rl_chunk"]} GRPO steps ({preset.grpo.prompts_per_step} hands x
G={preset.grpo.group_size}, lr {preset.optim.learning_rate:g}). Evaluated after every chunk on
{preset.eval_problems} hands per split, n={preset.eval_samples} samples at T=1: pass@1, the
rule-following probe "rule read" (the completion's `Numbers:` line lists the hand's numbers
under the prompt's rule, the analogue of the paper's card-recognition accuracy) and well-formed
answers; the base and each arm's last checkpoint again with n={extra["final_samples"]} for the
table and the verdict. {ns} seed(s); preset `{preset_name}` on {os.cpu_count()} CPU cores: the
arms' training runs took {train_min:.1f} min ({ns} seed(s), evaluations not included), training
{sum(base_walls) + train_min:.1f} min with the bases, this invocation {wall / 60:.1f} min (finished
runs and evaluations are reused from the run folders).{R.padding_note(preset)}
GRPO instead of the paper's PPO (cheaper; `rljax ppo` exists).

The base and each arm's final checkpoint (n={extra["final_samples"]} samples per hand; mean +- std
over seeds):

{R.table(["arm", "steps", "ID pass@1", "OOD pass@1", "ID rule read", "OOD rule read",
          "OOD well-formed"], rows)}

![ID / OOD accuracy and rule reading over training](id_ood.png){seed_line}

Verdict: {verdict}
{previous}
Reproduce: `{R.command(NAME, preset_name)}` (all numbers in `results.json`).
"""
  R.write_readme(path, text)


def rerender(path: str) -> None:
  """Rewrite README.md from an existing results.json (no training)."""
  r = R.read_results(path)
  preset, extra = preset_for(r["preset"])
  preset = R.apply_seeds(preset, r["seeds"])
  _figure(path, r["summary"], extra)
  _readme(path, r["preset"], preset, extra, r["final"], r["bases"], r["wall_time_s"], r["arms"],
          r.get("final_per_seed"))


if __name__ == "__main__":
  main()
