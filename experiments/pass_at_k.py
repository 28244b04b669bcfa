"""Does RL widen what the base model can solve? (arXiv 2504.13837), at small scale.

Claim: the RL policy beats its base model at small k (pass@1), but the base catches up with or
passes it at large k: RL sharpens the distribution toward answers the base already samples,
rather than adding new ones.

Setup: the base model is a supervised warm start (SFT) on arithmetic_dag (compact template,
mod 10, k in the preset's in-distribution range); the RL policy is GRPO from that checkpoint.
Both are evaluated with n samples per problem at temperature 1 and the unbiased pass@k
estimator, for k = 1, 2, 4, ..., n, on in-distribution problems and on harder ones (more
operations than seen in training). pass@k is verified (a sample counts only when every worked
step and the answer are right; the answer alone is a 1-in-10 guess, so answer-only pass@k nears
1 by k = 32 whatever the policy) with answer-only pass@k beside it. One base and one RL run per
seed; error bars are the std over seeds.

Run: ``python experiments/pass_at_k.py --preset cpu`` (see experiments/README.md).
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _rl as R

NAME = "pass_at_k"


def preset_for(name: str) -> tuple[R.RLPreset, dict]:
  """The preset and this study's extras (harder-problem difficulty, samples per problem)."""
  p = R.arithmetic_preset(name)
  if name == "smoke":
    return p, {"hard_k": 2, "n": 4}
  if name == "cpu":
    # The shared preset's GRPO (R.SHARED_RL_OPTIM, 60 steps of 16 x 8); n = 256 samples on 32
    # problems per set.
    return dataclasses.replace(p, eval_problems=32, eval_batch=4), {"hard_k": 3, "n": 256}
  return p, {"hard_k": 6, "n": 256}


def main(argv=None) -> str:
  args = R.parse_args(NAME, __doc__, argv)
  preset, extra = preset_for(args.preset)
  preset = R.apply_seeds(preset, args.seeds)
  n = extra["n"]
  t = C.Stopwatch()
  sets = {
      "in_distribution": R.problems(preset.task, preset.eval_problems),
      "harder": R.problems(preset.task, preset.eval_problems, k=extra["hard_k"]),
  }
  runs: dict[str, list] = {"base": [], "rl": []}
  evals: dict[str, dict[str, list]] = {a: {s: [] for s in sets} for a in runs}
  for seed in preset.seeds:
    sft = R.sft_checkpoint(args.workdir, preset, progress=not args.no_progress)
    rl = R.grpo_arm(args.workdir, NAME, "grpo", preset, seed, sft["run_dir"],
                    progress=not args.no_progress)
    runs["base"].append({k: v for k, v in sft.items() if k != "config"})
    runs["rl"].append({**{k: v for k, v in rl.items() if k not in ("metrics", "config")},
                       "curves": R.slim_metrics(rl["metrics"], ("reward_mean", "accuracy",
                                                                "entropy"))})
    for arm, run_dir in (("base", sft["run_dir"]), ("rl", rl["run_dir"])):
      for sname, ex in sets.items():
        evals[arm][sname].append(R.verified_eval(run_dir, preset, ex, seed + 100, n=n))
  summary = summarize(evals, R.pass_ks(n))
  wall = t()  # one reading for results.json and the README
  path = R.write_results(NAME, args.out, preset_name=args.preset, preset=preset, arms=runs,
                         summary=summary, wall_s=wall,
                         extra={"study_extra": extra, "evals": evals,
                                "command": R.command(NAME, args.preset)})
  _figure(path, summary)
  _readme(path, args.preset, preset, extra, summary, wall)
  return path


def summarize(evals: dict[str, dict[str, list]], ks: list[int]) -> dict:
  """Per eval set: base and RL pass@k (mean, std over seeds), RL - base and the first k where
  the base catches up, on verified pass@k (the verdict's metric) and, under ``answer_`` keys,
  answer-only pass@k."""
  summary = {}
  for sname in evals["base"]:
    out = {"ks": ks}
    for pre, key in (("", "pass"), ("answer_", "answer_pass")):
      b = np.asarray([e[key] for e in evals["base"][sname]])  # [S, K]
      r = np.asarray([e[key] for e in evals["rl"][sname]])
      diff = (r - b).mean(0)
      out |= {f"{pre}base_mean": b.mean(0), f"{pre}base_std": b.std(0),
              f"{pre}rl_mean": r.mean(0), f"{pre}rl_std": r.std(0),
              f"{pre}rl_minus_base": diff,
              f"{pre}first_k_base_catches_up": next((k for k, d in zip(ks, diff) if d <= 0),
                                                    None)}
    summary[sname] = out
  return summary


def _figure(path: str, summary: dict) -> None:
  plt = C.plt()
  fig, axes = plt.subplots(len(R.PASS_ROWS), len(summary),
                           figsize=(5 * len(summary), 3.6 * len(R.PASS_ROWS)), squeeze=False)
  for row, (key, ylabel) in zip(axes, R.PASS_ROWS):
    pre = "" if key == "pass" else "answer_"
    for ax, (sname, s) in zip(row, summary.items()):
      for arm, label in (("base", "base (SFT)"), ("rl", "RL (GRPO)")):
        ax.errorbar(s["ks"], s[f"{pre}{arm}_mean"], yerr=s[f"{pre}{arm}_std"], marker="o",
                    capsize=3, label=label)
      R.pass_axis(ax, s["ks"], sname, ylabel, chance=bool(pre))
  fig.tight_layout()
  fig.savefig(os.path.join(path, "pass_at_k.png"), dpi=120)
  plt.close(fig)


def _verdict(preset_name: str, seeds: int, idd: dict) -> str:
  """On verified pass@k in distribution: RL ahead at k=1 beyond the seed spread (the larger std
  of the two arms at that k, at least 0.01), and the base ahead of RL beyond the spread at some
  k > 1 (or level with it at the largest k: both can saturate at 1.0 there). A k=1 lead under
  twice the spread is called marginal."""
  if preset_name == "smoke":
    return "not yet run (smoke preset: plumbing check only; the numbers mean nothing)."
  ks, diff = idd["ks"], np.asarray(idd["rl_minus_base"], float)
  spread = np.maximum(np.maximum(np.asarray(idd["base_std"], float),
                                 np.asarray(idd["rl_std"], float)), 0.01)
  facts = (f"verified RL - base {diff[0]:+.3f} at k=1 and {diff[-1]:+.3f} at k={ks[-1]} in "
           "distribution "
           f"(seed spread {spread[0]:.3f} / {spread[-1]:.3f})")
  catch = idd["first_k_base_catches_up"]
  if catch is not None:
    facts += f"; the base mean catches up at k={catch}"
  worst = int(np.argmin(diff))
  if worst > 0 and diff[worst] < 0:
    facts += (f"; the base leads most at k={ks[worst]}: {-diff[worst]:.3f} (seed spread "
              f"{spread[worst]:.3f})")
  if seeds == 1:
    return f"inconclusive (one seed, no error bars): {facts}."
  base_1 = idd.get("base_mean", [None])[0]
  floor = "" if base_1 is None else R.verified_floor(base_1, "the base's verified pass@1")
  if floor:
    facts += (f". Caveat: {floor}, so both curves rest on a handful of fully right samples "
              "per problem")
  small_win = diff[0] > spread[0]
  passes = bool(np.any(diff[1:] < -spread[1:]))
  base_large = passes or diff[-1] < spread[-1]  # ahead somewhere, or level at the largest k
  top = [idd.get("base_mean", [0.0])[-1], idd.get("rl_mean", [0.0])[-1]]
  ceiling = not passes and min(top) >= 0.99
  if small_win and ceiling:
    return (f"partly: RL leads at k=1 beyond the seed spread, but the base catches up only at "
            f"the ceiling (both >= 0.99 at k={ks[-1]}) and never leads beyond the spread, so "
            f"this set cannot show the base passing RL ({facts}).")
  if small_win and base_large:
    how = "passes RL beyond the spread" if passes else "is level with RL at the largest k"
    what = "reproduced in form only, at the floor" if floor else "reproduced"
    lead = "beyond the seed spread"
    if R.marginal(diff[0], spread[0]):
      what += ", the small-k half marginally"
      lead = "by less than twice the seed spread"
    return f"{what}: RL leads at k=1 {lead} and the base {how} ({facts})."
  if small_win:
    return f"partly: RL leads at k=1 but still leads at the largest k ({facts})."
  if base_large:
    return (f"not reproduced: RL does not lead at k=1 beyond the seed spread, so there is no "
            f"small-k advantage for the base to catch up with ({facts}).")
  return f"not reproduced ({facts})."


def _readme(path, preset_name, preset, extra, summary, wall) -> None:
  seeds = len(preset.seeds)
  rows = []
  for sname, s in summary.items():
    for i, k in enumerate(s["ks"]):
      rows.append([sname, k, f"{s['base_mean'][i]:.3f} +- {s['base_std'][i]:.3f}",
                   f"{s['rl_mean'][i]:.3f} +- {s['rl_std'][i]:.3f}",
                   f"{s['rl_minus_base'][i]:+.3f}",
                   f"{s['answer_base_mean'][i]:.3f}", f"{s['answer_rl_mean'][i]:.3f}",
                   f"{s['answer_rl_minus_base'][i]:+.3f}"])
  hard = summary["harder"]
  below = all(max(b, r) < R.chance_pass(k) for k, b, r in
              zip(hard["ks"], hard["answer_base_mean"], hard["answer_rl_mean"]))
  hard_note = (" Both policies' answer-only pass@k is below the chance level at every k there: "
               "these problems are beyond the model's competence and it answers them "
               "confidently wrong." if below else "")
  if max(max(hard["base_mean"]), max(hard["rl_mean"])) == 0:
    hard_line = ("Harder set: neither policy gets a single sample fully right (verified pass@k "
                 "0 at every k).")
  else:
    hard_line = (f"Harder set (verified): RL - base at k=1 is {hard['rl_minus_base'][0]:+.3f}, "
                 f"at k={hard['ks'][-1]} it is {hard['rl_minus_base'][-1]:+.3f}.")
  idd = summary["in_distribution"]
  verdict = _verdict(preset_name, seeds, idd)
  text = f"""# Does RL widen the base model's reach? pass@k of base vs RL (arXiv 2504.13837)

Claim (paper): RL wins at small k, the base model catches up and passes it at k in the tens to
hundreds (e.g. +9% base at k=128 on Minerva, 32B).

Setup: arithmetic_dag (compact template, mod 10), in-distribution difficulty
`{", ".join(preset.task.difficulty)}`, harder problems k={extra["hard_k"]}; model
{preset.model.num_layers}x{preset.model.d_model} from scratch; base = SFT
{preset.sft.steps} steps, RL = GRPO {preset.grpo.steps} steps
({preset.grpo.prompts_per_step} prompts x {preset.grpo.group_size}, lr
{preset.optim.learning_rate:g}) from it;
n = {extra["n"]} samples per problem at T = {preset.eval_temperature} on
{preset.eval_problems} problems per set; {seeds} seed(s), mean +- std over seeds;
preset `{preset_name}` ({wall / 60:.1f} min wall on {C.machine_info()["cpu_count"]} CPU cores,
without the warm start when it was cached: its own time is `arms.base[].wall_s` in
results.json). {R.VERIFIED_LINE}

{R.table(["set", "k", "base pass@k (verified)", "RL pass@k (verified)", "RL - base",
          "base answer-only", "RL answer-only", "RL - base (answer-only)"], rows)}

![pass@k: verified (top), answer-only (bottom)](pass_at_k.png)

Answer-only, in distribution: RL - base {idd["answer_rl_minus_base"][0]:+.3f} at k=1, the base
mean catches up at k={idd["answer_first_k_base_catches_up"]}. {hard_line}
{R.chance_line([1, 8, 32])}{hard_note}

Verdict: {verdict}

Reproduce: `{R.command(NAME, preset_name)}` (all numbers in `results.json`).
"""
  R.write_readme(path, text)


def rerender(path: str) -> None:
  """Redraw the figure and rewrite README.md from an existing results.json (no training)."""
  r = R.read_results(path)
  preset, _ = preset_for(r["preset"])
  preset = R.apply_seeds(preset, r["seeds"])
  _figure(path, r["summary"])
  _readme(path, r["preset"], preset, r["study_extra"], r["summary"], r["wall_time_s"])


if __name__ == "__main__":
  main()
