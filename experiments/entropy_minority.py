"""High-entropy minority tokens drive RL (the "80/20" paper, arXiv 2506.01939), at small scale.

Claim: a DAPO-style update restricted to the top-20% highest-entropy response tokens (pooled
over the batch) matches or beats the update on all tokens; training only on the bottom 80%
(the low-entropy complement) hurts. Most tokens have low entropy, a minority high.

Arms (GRPO config overrides from the same SFT warm start; DAPO: clip-higher 0.2/0.28,
token-mean loss, no KL): ``entropy_top_rho`` = 1.0 (all tokens), 0.5, 0.2 (top), and 0.8 with
``entropy_mask_side="bottom"`` (the bottom-80% complement). Plus the histogram of the base
policy's per-token entropy on its own samples.

Run: ``python experiments/entropy_minority.py --preset cpu`` (see experiments/README.md).
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C
import _rl as R

NAME = "entropy_minority"
DAPO = {"eps_low": 0.2, "eps_high": 0.28, "aggregation": "token-mean", "kl_coef": 0.0}
ARMS = {
    "all tokens (rho=1.0)": {**DAPO, "entropy_top_rho": 1.0},
    "top 50% (rho=0.5)": {**DAPO, "entropy_top_rho": 0.5},
    "top 20% (rho=0.2)": {**DAPO, "entropy_top_rho": 0.2},
    "bottom 80%": {**DAPO, "entropy_top_rho": 0.8, "entropy_mask_side": "bottom"},
}


def preset_for(name: str) -> R.RLPreset:
  return R.arithmetic_preset(name)


def main(argv=None) -> str:
  args = R.parse_args(NAME, __doc__, argv)
  preset = R.apply_seeds(preset_for(args.preset), args.seeds)
  t = C.Stopwatch()
  ex = R.problems(preset.task, preset.eval_problems)
  res = R.run_arms(args, preset, NAME, ARMS, {"in_distribution": ex})
  ent = R.token_entropies(res["sft"]["run_dir"], preset, ex, seed=7)
  base = R.verified_eval(res["sft"]["run_dir"], preset, ex, 99)
  ks = R.pass_ks(preset.eval_samples)
  kmax = ks[-1]
  k_mid = 16 if 16 in ks else kmax
  # pass@k is verified (every worked step and the answer right); answer_pass@1 beside it.
  summary = {"base (SFT)": {"pass@1": (base["pass"][0], 0.0),
                            f"pass@{k_mid}": (base["pass"][ks.index(k_mid)], 0.0),
                            "answer_pass@1": (base["answer_pass"][0], 0.0)}}
  for arm, runs in res["arms"].items():
    p1 = R.arm_stat(runs, "in_distribution", 1)
    pk = R.arm_stat(runs, "in_distribution", k_mid)
    summary[arm] = {
        "pass@1": p1[:2], "pass@1_seeds": p1[2], f"pass@{k_mid}": pk[:2],
        "answer_pass@1": R.arm_stat(runs, "in_distribution", 1, "answer_pass")[:2],
        f"pass@{k_mid}_seeds": pk[2],
        "final_train_reward": float(np.mean([np.mean(r["curves"]["reward_mean"][-5:])
                                             for r in runs])),
        "greedy_after": float(np.mean([r["after"]["accuracy"] for r in runs])),
        "greedy_before": float(runs[0]["before"]["accuracy"]),
    }
  qs = np.quantile(ent, [0.5, 0.8, 0.9, 0.95]) if ent.size else np.zeros(4)
  ent_stats = {"num_tokens": int(ent.size), "mean": float(ent.mean()) if ent.size else None,
               "median": float(qs[0]), "p80": float(qs[1]), "p90": float(qs[2]),
               "p95": float(qs[3]),
               "frac_below_0.1": float((ent < 0.1).mean()) if ent.size else None,
               "histogram": np.histogram(ent, bins=40)}
  wall = t()  # one reading for results.json and the README
  path = R.write_results(NAME, args.out, preset_name=args.preset, preset=preset,
                         arms=res["arms"], summary=summary, wall_s=wall,
                         extra={"sft": res["sft"], "entropy": ent_stats, "entropies": ent,
                                "base_eval": base, "k_mid": k_mid,
                                "command": R.command(NAME, args.preset)})
  _figures(path, res["arms"], ent, base)
  _readme(path, args.preset, preset, summary, ent_stats, k_mid, wall)
  return path


def _figures(path: str, arms: dict, ent: np.ndarray, base: dict) -> None:
  R.plot_curves(path, arms, "reward_mean", "reward.png", "train reward")
  R.plot_curves(path, arms, "entropy", "entropy_curve.png", "policy entropy")
  R.plot_pass(path, arms, ["in_distribution"], "pass_at_k.png",
              base={"in_distribution": base})
  _hist(path, ent)


def _hist(path: str, ent: np.ndarray) -> None:
  plt = C.plt()
  fig, ax = plt.subplots(figsize=(6, 3.8))
  if ent.size:
    ax.hist(ent, bins=40, color="tab:blue", alpha=0.8)
    thr = float(np.quantile(ent, 0.8))
    ax.axvline(thr, color="tab:red", ls="--", label=f"80th percentile = {thr:.2f} nats")
    ax.legend()
  ax.set_yscale("log")
  ax.set_xlabel("token entropy (nats)")
  ax.set_ylabel("tokens")
  ax.set_title("entropy of the base policy's sampled tokens")
  fig.tight_layout()
  fig.savefig(os.path.join(path, "entropy_hist.png"), dpi=120)
  plt.close(fig)


def _verdict(preset_name: str, ns: int, summary: dict, k_mid: int) -> str:
  """On verified pass@1: top 20% matches or beats all tokens within the seed spread, and the
  bottom 80% is below both beyond it; with the floor-effect caveat when the base's verified
  pass@1 is under the floor."""
  early = R.early_verdict(preset_name, ns)
  if early:
    return early
  top20 = summary["top 20% (rho=0.2)"]["pass@1"][0]
  full = summary["all tokens (rho=1.0)"]["pass@1"][0]
  bottom = summary["bottom 80%"]["pass@1"][0]
  noise = max(summary["all tokens (rho=1.0)"]["pass@1"][1],
              summary["top 20% (rho=0.2)"]["pass@1"][1], summary["bottom 80%"]["pass@1"][1],
              0.01)
  a = top20 >= full - noise
  b = bottom < min(top20, full) - noise
  what = "reproduced" if a and b else "partly reproduced" if a or b else "not reproduced"
  facts = (f"top-20% verified pass@1 {top20:.3f} vs all tokens {full:.3f} "
           f"({'matches or beats' if a else 'worse than'} within the seed spread "
           f"{noise:.3f}); bottom-80% {bottom:.3f} "
           f"({'hurts' if b else 'does not clearly hurt'})")
  base = summary["base (SFT)"]["pass@1"][0]
  facts += f"; the SFT base is at {base:.3f}"
  lift = R.no_lift(max(v["pass@1"][0] for k, v in summary.items() if k != "base (SFT)"), base,
                   noise)
  if lift:
    facts += f". {lift}, so 'matches' compares arms that barely moved"
    if a and b:
      what = "reproduced in form only"
  floor = R.verified_floor(base, "the base's verified pass@1")
  if floor:
    facts += f". Floor effect: {floor}"
  return f"{what}: {facts}."


def _readme(path, preset_name, preset, summary, ent_stats, k_mid, wall) -> None:
  ns = len(preset.seeds)
  rows = [[arm, R.pm(*s["pass@1"], 1 if arm == "base (SFT)" else ns),
           R.pm(*s[f"pass@{k_mid}"], 1 if arm == "base (SFT)" else ns),
           R.pm(*s["answer_pass@1"], 1 if arm == "base (SFT)" else ns),
           f"{s['final_train_reward']:.3f}" if "final_train_reward" in s else "-",
           f"{s['greedy_after']:.3f}" if "greedy_after" in s else "-"]
          for arm, s in summary.items()]
  greedy_before = next(s for s in summary.values() if "greedy_before" in s)["greedy_before"]
  verdict = _verdict(preset_name, ns, summary, k_mid)
  text = f"""# High-entropy minority tokens (arXiv 2506.01939)

Claim (paper): training on the top 20% entropy tokens matches or beats all tokens (Qwen3-32B
AIME24 55.83 -> 63.54); the bottom 80% hurts (a severe drop); most tokens have low entropy.

Setup: {R.setup_line(preset, preset_name, wall)} DAPO loss (clip 0.2/0.28, token-mean, no KL);
no dynamic sampling (cost).

{R.table(["arm", "pass@1 (verified)", f"pass@{k_mid} (verified)", "pass@1 (answer-only)",
          "train reward (last 5)", "greedy acc (answer)"], rows)}

Greedy answer accuracy of the SFT warm start: {greedy_before:.3f}.
{R.chance_line([1, k_mid])}

Token entropy of the base policy's samples ({ent_stats["num_tokens"]} tokens): median
{ent_stats["median"]:.3f}, 80th percentile {ent_stats["p80"]:.3f}, 95th
{ent_stats["p95"]:.3f} nats; {100 * (ent_stats["frac_below_0.1"] or 0):.0f}% of tokens below
0.1 nats.

![reward curves](reward.png) ![entropy histogram](entropy_hist.png)
![pass@k: verified (top), answer-only (bottom)](pass_at_k.png) ![policy entropy](entropy_curve.png)

Verdict: {verdict}

Reproduce: `{R.command(NAME, preset_name)}` (all numbers in `results.json`).
"""
  R.write_readme(path, text)


def rerender(path: str) -> None:
  """Redraw the figures and rewrite README.md from an existing results.json (no training)."""
  r = R.read_results(path)
  preset = R.apply_seeds(preset_for(r["preset"]), r["seeds"])
  _figures(path, r["arms"], np.asarray(r["entropies"], np.float64), r["base_eval"])
  _readme(path, r["preset"], preset, r["summary"], r["entropy"], r["k_mid"], r["wall_time_s"])


if __name__ == "__main__":
  main()
