"""The RL studies under experiments/: each smoke preset runs end to end and writes its results.

One session-wide work folder holds the run folders, so the studies that share the arithmetic
smoke preset (pass_at_k, entropy_minority, entropy_advantage, dapo_ablation) train their SFT
warm start once.
"""

import importlib
import json
import os

import numpy as np
import pytest

# experiments/ is on sys.path (tests/experiments/conftest.py).

STUDIES = ["pass_at_k", "entropy_minority", "entropy_advantage", "dapo_ablation", "sft_vs_rl",
           "difficulty", "swe_rl"]
SCHEMA = {"study", "preset", "config", "seeds", "machine", "wall_time_s", "summary", "arms"}
FIGURES = {
    "pass_at_k": ["pass_at_k.png"],
    "entropy_minority": ["reward.png", "entropy_hist.png", "pass_at_k.png", "entropy_curve.png"],
    "entropy_advantage": ["pass_at_k.png", "entropy_curve.png", "reward.png"],
    "dapo_ablation": ["ablation.png", "train_accuracy.png", "entropy_curve.png"],
    "sft_vs_rl": ["id_ood.png"],
    "difficulty": ["bands.png", "transfer.png"],
    "swe_rl": ["train_exact.png"],
}


# pass_at_k's smoke covers the whole harness (SFT warm start, a GRPO arm, pass@k evaluation,
# results / figures / README) in about a CPU-minute. The other six smokes compile one GRPO
# step per arm and take ~10 CPU-minutes together: they are marked slow, which the default run
# deselects (pyproject's addopts); run them with `python -m pytest -n 2 -m slow`.
PARAMS = [name if name == "pass_at_k" else pytest.param(name, marks=pytest.mark.slow)
          for name in STUDIES]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("rl_runs"))


@pytest.mark.parametrize("name", PARAMS)
def test_smoke_preset_writes_results(name, workdir, tmp_path):
  import _common as C
  import jax

  mod = importlib.import_module(name)
  out = str(tmp_path / name)
  before = jax.config.jax_compilation_cache_dir
  try:
    path = mod.main(["--preset", "smoke", "--workdir", workdir, "--out", out, "--no-progress"])
  finally:
    C.compilation_cache(before)  # the study turned on its cache; the other tests run without
  assert path == out
  assert os.listdir(os.path.join(workdir, "jax_cache"))  # its compiles went to WORKDIR/jax_cache
  with open(os.path.join(out, "results.json")) as f:
    res = json.load(f)
  # Per study (the folder above is shared by every smoke): this study ran with the cache on.
  assert res["machine"]["compile_cache"] == os.path.join(workdir, "jax_cache")
  assert SCHEMA <= set(res), SCHEMA - set(res)
  assert res["study"] == name and res["preset"] == "smoke"
  assert res["seeds"] == [0]
  assert res["wall_time_s"] > 0
  assert res["machine"]["cpu_count"] >= 1 and res["machine"]["jax"]
  assert res["command"] == f"python experiments/{name}.py --preset smoke"
  assert res["arms"] and res["summary"]
  for fig in FIGURES[name]:
    p = os.path.join(out, fig)
    assert os.path.getsize(p) > 1000, fig
    with open(p, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(os.path.join(out, "README.md")) as f:
    readme = f.read()
  for needle in ("Claim (paper", "Setup:", "Verdict: not yet run", "| ", "](",
                 f"python experiments/{name}.py --preset smoke"):
    assert needle in readme, needle
  # Re-rendering from results.json (and swe_rl's re-scoring of the saved checkpoints, with the
  # same seeds) reproduces the table and verdict.
  redo = getattr(mod, "rescore", None) or getattr(mod, "rerender", None)
  if redo is not None:
    os.remove(os.path.join(out, "README.md"))
    redo(out)
    with open(os.path.join(out, "README.md")) as f:
      again = f.read()
    assert again == readme  # wall times included: README and results.json share one reading


def test_pass_curve_hand_values():
  import _rl as R

  # n = 4, c = [0, 2, 4]: pass@1 = mean(0, 1/2, 1) = 1/2;
  # pass@2 = mean(0, 1 - C(2,2)/C(4,2) = 5/6, 1) = 11/18; pass@4 = mean(0, 1, 1) = 2/3.
  np.testing.assert_allclose(R.pass_curve(4, [0, 2, 4], [1, 2, 4]), [0.5, 11 / 18, 2 / 3])
  assert R.pass_ks(256) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
  assert R.pass_ks(6) == [1, 2, 4, 6]


def test_smooth_trailing_mean():
  import _rl as R

  np.testing.assert_allclose(R.smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
  np.testing.assert_allclose(R.smooth(np.array([1.0, 2.0]), 1), [1.0, 2.0])


def test_curve_and_table():
  import _rl as R

  recs = [{"phase": "grpo", "step": 1, "reward_mean": 0.5}, {"phase": "sft", "step": 1},
          {"phase": "grpo", "step": 2, "reward_mean": 1.0}]
  steps, vals = R.curve(recs, "reward_mean", "grpo")
  assert steps.tolist() == [1, 2] and vals.tolist() == [0.5, 1.0]
  assert R.table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_presets_validate():
  import _rl as R

  for name in ("smoke", "cpu", "gpu", "tpu"):
    p = R.arithmetic_preset(name)
    assert p.grpo.rows % 8 == 0 and p.sft.batch_size % 8 == 0  # the 8-device test mesh
  with pytest.raises(ValueError, match="preset"):
    R.arithmetic_preset("nope")
  with pytest.raises(ValueError, match="eval_samples"):
    import dataclasses

    dataclasses.replace(R.arithmetic_preset("smoke"), eval_samples=0)


def test_run_keys_ignore_pad_multiple_only_at_its_neutral_value():
  """Runs cached before ``pad_multiple`` existed keep their keys; a bucketed run is a new run."""
  import dataclasses
  import hashlib

  import _common as C
  import _rl as R

  from rljax.train import GRPOConfig, SFTConfig

  sft = SFTConfig(steps=3)
  old = {k: v for k, v in C._jsonable(sft).items() if k != "pad_multiple"}  # the field-less dict
  want = hashlib.sha1(json.dumps([old], sort_keys=True).encode()).hexdigest()[:10]
  assert R._key(sft) == want
  assert R._key(dataclasses.replace(sft, pad_multiple=16)) != want
  g = GRPOConfig()
  assert R._key({"grpo": g}) != R._key({"grpo": dataclasses.replace(g, pad_multiple=8)})


def test_exposure_task_mixes_templates():
  difficulty = importlib.import_module("difficulty")
  task = difficulty.ArithmeticExposure()
  ex = task.generate(np.random.default_rng(0), 2000, k=1, template="compact", heldout="symbolic",
                     exposure=0.01)
  share = np.mean([e.metadata["template"] == "symbolic" for e in ex])
  assert 0.002 < share < 0.02
  ex0 = task.generate(np.random.default_rng(0), 50, k=1, template="compact")
  assert all(e.metadata["template"] == "compact" for e in ex0)


def test_exact_match_reward():
  swe_rl = importlib.import_module("swe_rl")
  from rljax.tasks import get_task

  task = get_task(swe_rl.EXACT)
  ex = task.generate(np.random.default_rng(0), 1, n_files=1)[0]
  assert task.reward(ex, task.sft_target(ex)) == 1.0
  assert task.reward(ex, "no solution here") == -1.0


def _curve(values, std=0.0):
  return {"steps": list(range(len(values))), "mean": list(values), "std": [std] * len(values)}


def _svr_final(base_ood, sft_ood, rl_ood, fmt_scratch, std=0.02, samples=2048,
               read=(0.5, 0.2, 0.6)):
  def arm(ood, rd, fmt=0.99, idd=0.5, sd=std):
    cell = lambda m: {"mean": m, "std": sd, "samples": samples}
    return {"ood/pass@1": cell(ood), "ood/numbers_read": cell(rd), "ood/format_ok": cell(fmt),
            "in_distribution/pass@1": cell(idd), "in_distribution/numbers_read": cell(0.9)}
  return {"base": arm(base_ood, read[0], sd=0.0), "more SFT": arm(sft_ood, read[1]),
          "GRPO from base": arm(rl_ood, read[2]),
          "GRPO from scratch": arm(0.0, 0.0, fmt=fmt_scratch, idd=0.0)}


def test_sft_vs_rl_verdict_names_the_floor_effect_and_reads_each_claim():
  svr = importlib.import_module("sft_vs_rl")
  floor = svr._verdict("cpu", 2, _svr_final(0.0, 0.0, 0.01, 0.3))
  assert floor.startswith("not reproduced") and "floor effect" in floor
  assert "OOD rule read 0.50 at the base -> 0.20 after more SFT, 0.60 after GRPO" in floor
  assert "fails on format" in floor
  both = svr._verdict("cpu", 2, _svr_final(0.1, 0.02, 0.2, 0.3))
  assert both.startswith("reproduced") and "a drop beyond" in both and "above more SFT" in both
  assert "only GRPO's gain carries over to the OOD rule" in both  # SFT's rule read fell
  flat = svr._verdict("cpu", 2, _svr_final(0.1, 0.02, 0.2, 0.3, read=(0.3, 0.3, 0.5)))
  assert "only GRPO's gain carries over to the OOD rule" in flat
  both_up = svr._verdict("cpu", 2, _svr_final(0.1, 0.02, 0.2, 0.3, read=(0.3, 0.5, 0.5)))
  assert "carries over" not in both_up
  # RL ahead of SFT by less than the seed spread and SFT not below the base: only format holds.
  within = svr._verdict("cpu", 2, _svr_final(0.1, 0.10, 0.11, 0.3, std=0.05))
  assert within.startswith("partly reproduced") and "no drop" in within
  assert "not above more SFT" in within
  # Beyond the seed spread but not beyond the sampling error of 64 completions.
  few = svr._verdict("cpu", 2, _svr_final(0.1, 0.06, 0.10, 0.9, std=0.0, samples=64))
  assert few.startswith("not reproduced") and "no drop" in few and "not above" in few
  # GRPO ahead of SFT but itself below the base: the RL claim does not hold.
  rl_down = svr._verdict("cpu", 2, _svr_final(0.2, 0.02, 0.1, 0.9))
  assert rl_down.startswith("partly reproduced") and "below the base: -0.100" in rl_down
  assert "a drop beyond the noise: -0.180" in rl_down
  assert "does not fail on format" in rl_down
  # One base per seed: the bases' spread counts like any arm's. A 0.08 base std hides the drop
  # that the same means show with steady bases.
  bases_vary = _svr_final(0.1, 0.04, 0.11, 0.3, std=0.0)
  bases_vary["base"]["ood/pass@1"]["std"] = 0.08
  assert "no drop beyond the noise: -0.060" in svr._verdict("cpu", 2, bases_vary)
  steady = svr._verdict("cpu", 2, _svr_final(0.1, 0.04, 0.11, 0.3, std=0.0))
  assert "a drop beyond the noise: -0.060" in steady


def test_sft_vs_rl_final_summary_reads_every_seeds_base():
  svr = importlib.import_module("sft_vs_rl")

  def ev(p):
    split = {"pass@1": p, "numbers_read": p, "format_ok": 1.0, "n": 4}
    return {"in_distribution": split, "ood": split}

  sets = {"in_distribution": [None] * 8, "ood": [None] * 8}
  final = {"base": [ev(0.1), ev(0.3)], "more SFT": [ev(0.5), ev(0.5)]}
  out = svr.final_summary(final, sets)
  assert out["base"]["ood/pass@1"]["mean"] == pytest.approx(0.2)
  assert out["base"]["ood/pass@1"]["std"] == pytest.approx(0.1)
  assert out["base"]["ood/pass@1"]["samples"] == 8 * 4 * 2  # hands x samples x seeds
  assert out["more SFT"]["ood/pass@1"]["std"] == 0.0


def test_sft_vs_rl_cpu_preset_shares_one_base_and_reads_it_for_every_seed():
  svr = importlib.import_module("sft_vs_rl")
  cpu, extra = svr.preset_for("cpu")
  assert len(cpu.seeds) == 2 and svr.base_seeds(cpu, extra) == cpu.seeds[:1]
  assert [svr.base_index(i, extra) for i in range(len(cpu.seeds))] == [0, 0]
  gpu, gextra = svr.preset_for("gpu")
  assert svr.base_seeds(gpu, gextra) == tuple(gpu.seeds)
  assert [svr.base_index(i, gextra) for i in range(3)] == [0, 1, 2]

  def ev(p):
    return {"in_distribution": {"pass@1": p}, "ood": {"pass@1": p}}

  final_raw = {"base": [ev(0.05)], "more SFT": [ev(0.01), ev(0.02)],
               "GRPO from base": [ev(0.06), ev(0.07)]}
  line = svr.per_seed_line(final_raw, (0, 1), extra)
  assert "seed 0 0.050 -> 0.010 / 0.060; seed 1 0.050 -> 0.020 / 0.070." in line
  with pytest.raises(IndexError):  # a base per seed needs one base evaluation per seed
    svr.per_seed_line(final_raw, (0, 1), gextra)


def test_difficulty_cpu_preset_runs_the_transfer_arms_on_the_first_seed():
  difficulty = importlib.import_module("difficulty")
  cpu, extra = difficulty.preset_for("cpu")
  assert difficulty.transfer_seeds(cpu, extra) == cpu.seeds[:1]
  gpu, gextra = difficulty.preset_for("gpu")
  assert difficulty.transfer_seeds(gpu, gextra) == tuple(gpu.seeds)


def test_entropy_advantage_verdict_needs_a_gain_beyond_the_seed_spread():
  ea = importlib.import_module("entropy_advantage")
  names = list(ea.ARMS)

  def summary(gain_1, gain_k, std):
    per = {names[0]: {"mean": np.zeros(2), "std": np.full(2, std)},
           names[1]: {"mean": np.asarray([gain_1, gain_k]), "std": np.full(2, std)},
           "gain": np.asarray([gain_1, gain_k]), "base": np.zeros(2)}
    return {"in_distribution": per, "harder": per}

  assert ea._verdict("cpu", 2, [1, 8], summary(0.0, 0.1, 0.02), names).startswith("reproduced")
  noise = ea._verdict("cpu", 2, [1, 8], summary(0.0, 0.03, 0.05), names)
  assert noise.startswith("not reproduced") and "grows with k" in noise
  assert ea._verdict("cpu", 1, [1, 8], summary(0.0, 0.1, 0.0), names).startswith("inconclusive")
  floor = "Floor effect: the SFT base's verified pass@1 in distribution (0.000) is under 0.05"
  assert floor in noise


def test_entropy_advantage_summary_reads_verified_and_keeps_answer_only_beside_it():
  ea = importlib.import_module("entropy_advantage")
  names = list(ea.ARMS)

  def ev(verified, answer):
    return {"eval": {"in_distribution": {"pass": verified, "answer_pass": answer}}}

  arms = {names[0]: [ev([0.1, 0.2], [0.3, 0.9]), ev([0.3, 0.4], [0.3, 0.9])],
          names[1]: [ev([0.2, 0.5], [0.4, 0.8]), ev([0.2, 0.5], [0.4, 0.8])]}
  base = {"in_distribution": {"pass": [0.1, 0.3], "answer_pass": [0.3, 1.0]}}
  s = ea.summarize(arms, base)["in_distribution"]
  np.testing.assert_allclose(s[names[0]]["mean"], [0.2, 0.3])
  np.testing.assert_allclose(s[names[0]]["std"], [0.1, 0.1])
  np.testing.assert_allclose(s["gain"], [0.0, 0.2])
  np.testing.assert_allclose(s["answer_gain"], [0.1, -0.1])
  np.testing.assert_allclose(s["base"], [0.1, 0.3])
  np.testing.assert_allclose(s["answer_base"], [0.3, 1.0])


def test_verified_eval_headlines_the_verified_curve(monkeypatch):
  R = importlib.import_module("_rl")
  raw = {"n": 4, "c": [4, 2], "ks": [1, 2, 4], "pass": [0.75, 0.9, 1.0], "format_ok": 1.0,
         "reward_mean": 0.75, "probes": {R.VERIFY: 0.25}, "probe_c": {R.VERIFY: [2, 0]},
         "probe_pass": {R.VERIFY: [0.25, 0.4, 0.5]}}
  seen = {}

  def fake_eval_pass(run_dir, preset, examples, seed, *, n=None, probes=()):
    seen["probes"] = probes
    return raw

  monkeypatch.setattr(R, "eval_pass", fake_eval_pass)
  e = R.verified_eval("run", None, [], 0, n=4)
  assert seen["probes"] == (R.VERIFY,)
  assert e["pass"] == [0.25, 0.4, 0.5] and e["answer_pass"] == [0.75, 0.9, 1.0]
  assert e["c"] == [2, 0] and e["answer_c"] == [4, 2]
  assert e["verified_share"] == 0.25 and e["answer_share"] == 0.75
  assert R.verified_floor(0.04, "x").startswith("x (0.040) is under 0.05")
  assert R.verified_floor(0.05, "x") == ""


def _difficulty_summary(edge_gain, id_gain, hard_gain, transfer_gains, std=0.02, base=0.6,
                        base_k=0.5, id_gain_1=0.05):
  kk = 32
  bands = {b: {f"gain_pass@{kk}": g, f"rl_pass@{kk}": (0.5, std), "base_pass@1": base,
               f"base_pass@{kk}": base_k, "gain_pass@1": id_gain_1, "rl_pass@1": (0.3, std)}
           for b, g in (("id", id_gain), ("edge", edge_gain), ("hard", hard_gain))}
  transfer = {e: {"before_pass@1": 0.1, "after_pass@1": (0.1 + g, std),
                  f"before_pass@{kk}": 0.4, f"after_pass@{kk}": (0.4 + g, std)}
              for e, g in zip(("0.0", "0.001", "0.01"), transfer_gains)}
  return {"bands": bands, "transfer": transfer}, kk


def test_difficulty_verdict_reads_each_claim_against_the_seed_spread():
  d = importlib.import_module("difficulty")
  s, kk = _difficulty_summary(0.2, 0.0, 0.01, (0.0, 0.0, 0.15))
  assert d._verdict("cpu", 2, s, kk).startswith("reproduced")
  s, kk = _difficulty_summary(0.2, 0.0, 0.01, (0.1, 0.1, 0.11))  # transfer without exposure too
  v = d._verdict("cpu", 2, s, kk)
  assert v.startswith("partly reproduced (the largest pass@k gain at the edge")
  s, kk = _difficulty_summary(0.03, 0.0, 0.01, (0.0, 0.0, 0.03), std=0.05)  # within the noise
  assert d._verdict("cpu", 2, s, kk).startswith("not reproduced")
  s, kk = _difficulty_summary(0.2, 0.3, 0.01, (0.0, 0.0, 0.0))  # the ID band gains more
  assert d._verdict("cpu", 2, s, kk).startswith("not reproduced")
  assert d._verdict("cpu", 1, s, kk).startswith("inconclusive")
  assert "seed spread 0.020" in d._verdict("cpu", 2, *_difficulty_summary(0, 0, 0, (0, 0, 0)))
  assert "Floor effect" not in d._verdict("cpu", 2, *_difficulty_summary(0, 0, 0, (0, 0, 0)))
  floor = d._verdict("cpu", 2, *_difficulty_summary(0, 0, 0, (0, 0, 0), base=0.03))
  assert "Floor effect: the pre-trained model gets every step right in only 0.030" in floor
  assert "verified pass@32 gain of RL per band" in floor
  v = d._verdict("cpu", 2, *_difficulty_summary(0, 0.01, 0, (0, 0, 0), id_gain_1=0.08))
  assert "in distribution RL moves verified pass@1 by +0.080 (seed spread 0.020) and pass@32 " \
      "by +0.010" in v
  assert "out of reach" not in v
  unreached = d._verdict("cpu", 2, *_difficulty_summary(0, 0, 0, (0, 0, 0), base_k=0.0))
  assert "The edge band is out of reach rather than at the edge of competence" in unreached
  assert "No exposure makes" not in unreached
  s, kk = _difficulty_summary(0, 0, 0, (0, 0, 0))
  for e, t in s["transfer"].items():
    t.update({"before_pass@32": 0.0, "after_pass@32": (0.0, 0.0), "before_pass@1": 0.0,
              "after_pass@1": (0.0, 0.0), "answer_before_pass@1": 0.1,
              "answer_after_pass@1": (0.1 + float(e), 0.0)})
  none = d._verdict("cpu", 2, s, kk)
  assert ("No exposure makes the held-out template solvable: verified pass@32 0.000 before and "
          "after RL at every exposure; answer-only pass@1 (before -> after RL) rises with "
          "exposure") in none and "1% 0.100 -> 0.110" in none
  for t in s["transfer"].values():
    t["answer_after_pass@1"] = (0.1, 0.0)
  assert "rises" not in d._verdict("cpu", 2, s, kk)


def test_difficulty_training_time_counts_every_run_once_or_says_it_cannot():
  d = importlib.import_module("difficulty")
  bands = {"id": [{"wall_s": 10.0}, {"wall_s": 20.0}], "edge": [{"wall_s": 5.0}]}
  transfer = {"0.0": {"pretrain_wall_s": 100.0, "runs": [{"wall_s": 1.0}]},
              "0.01": {"pretrain_wall_s": 300.0, "runs": [{"wall_s": 2.0}]}}
  assert d.training_time(bands, transfer) == {"pretrain_s": 400.0, "rl_s": 38.0}
  del transfer["0.01"]["pretrain_wall_s"]  # results written before the field was kept
  assert d.training_time(bands, transfer) is None


def test_difficulty_summary_reads_verified_pass_at_k_and_keeps_answer_only_beside_it():
  d = importlib.import_module("difficulty")
  ks = [1, 2]

  def ev(verified, answer):
    return {"pass": verified, "answer_pass": answer}

  base = {b: ev([0.1, 0.2], [0.3, 0.5]) for b in ("id", "edge")}
  bands = {b: [{"eval": {bb: ev([0.2, 0.4], [0.4, 0.6]) for bb in base}},
               {"eval": {bb: ev([0.4, 0.6], [0.4, 0.8]) for bb in base}}] for b in base}
  transfer = {"0.0": {"before": ev([0.0, 0.0], [0.1, 0.2]),
                      "runs": [{"eval": ev([0.1, 0.2], [0.2, 0.3])}]}}
  s = d.summarize(base, bands, transfer, ks)
  e = s["bands"]["edge"]
  assert e["base_pass@1"] == 0.1 and e["answer_base_pass@1"] == 0.3
  np.testing.assert_allclose(e["rl_pass@2"], (0.5, 0.1))
  np.testing.assert_allclose(e["gain_pass@2"], 0.3)
  np.testing.assert_allclose(e["answer_gain_pass@2"], 0.2)
  t = s["transfer"]["0.0"]
  assert t["before_pass@2"] == 0.0 and t["answer_before_pass@1"] == 0.1
  np.testing.assert_allclose(t["after_pass@1"], (0.1, 0.0))
  assert s["metric"].startswith("verified")


def test_verified_counts_need_every_step_not_just_the_answer(monkeypatch):
  import rljax.eval as E

  R = importlib.import_module("_rl")
  d = importlib.import_module("difficulty")
  task = d.ArithmeticExposure()
  ex = list(task.generate(0, 3, k=(2, 3), template="compact"))
  gold = [task.sft_target(e) for e in ex]
  guess = [f"<answer>{e.answer}</answer>" for e in ex]  # right answer, no work
  # sample_counts draws these two completions per problem (the model is not used)
  monkeypatch.setattr(E, "sample_completions",
                      lambda *a, **k: [[g, q] for g, q in zip(gold, guess)])
  out = R.sample_counts(None, task, None, ex, n=2, temperature=1.0, max_prompt_len=8,
                        max_new_tokens=8, batch=4, seed=0, probes={R.VERIFY: task.process_check})
  assert out["c"] == [2, 2, 2]  # answer-only: the guess counts
  assert out["probe_c"][R.VERIFY] == [1, 1, 1]  # verified: only the worked solution
  assert out["probes"][R.VERIFY] == 0.5


def test_pass_at_k_verdict_needs_both_ends_beyond_the_seed_spread():
  pk = importlib.import_module("pass_at_k")

  def idd(diff_1, diff_k, std=0.02, diff_mid=None):
    diff_mid = diff_k if diff_mid is None else diff_mid
    return {"ks": [1, 16, 256], "rl_minus_base": [diff_1, diff_mid, diff_k],
            "base_std": [std] * 3, "rl_std": [std] * 3,
            "first_k_base_catches_up": 16 if min(diff_mid, diff_k) <= 0 else None}

  assert pk._verdict("cpu", 2, idd(0.1, -0.1)).startswith("reproduced: RL leads at k=1")
  assert "is level with RL" in pk._verdict("cpu", 2, idd(0.1, 0.01))
  # Saturated at the largest k, the base ahead beyond the spread in the middle.
  mid = pk._verdict("cpu", 2, idd(0.1, -0.01, diff_mid=-0.1))
  assert "passes RL beyond the spread" in mid and "leads most at k=16: 0.100" in mid
  assert pk._verdict("cpu", 2, idd(0.1, 0.1)).startswith("partly")
  assert pk._verdict("cpu", 2, idd(0.01, -0.1)).startswith("not reproduced: RL does not lead")
  assert pk._verdict("cpu", 1, idd(0.1, -0.1)).startswith("inconclusive (one seed")
  # A k=1 lead under twice the spread is reported as marginal.
  assert pk._verdict("cpu", 3, idd(0.03, -0.1)).startswith(
      "reproduced, the small-k half marginally: RL leads at k=1 by less than twice the seed spread")
  at_floor = {**idd(0.1, -0.1), "base_mean": [0.03, 0.9, 1.0]}
  v = pk._verdict("cpu", 2, at_floor)
  assert v.startswith("reproduced in form only, at the floor: RL leads at k=1")
  assert "Caveat: the base's verified pass@1 (0.030) is under 0.05" in v
  assert "Caveat" not in pk._verdict("cpu", 2, {**idd(0.1, -0.1), "base_mean": [0.12, 0.9, 1]})
  # Level only because both saturate at 1.0: the claim's second half cannot show.
  ceiling = pk._verdict("cpu", 2, {**idd(0.1, 0.0, diff_mid=-0.005), "base_mean": [0.5, 0.98, 1.0],
                                   "rl_mean": [0.6, 0.975, 1.0]})
  assert ceiling.startswith("partly: RL leads at k=1 beyond the seed spread, but the base catches "
                            "up only at the ceiling (both >= 0.99 at k=256)")


def test_pass_at_k_summary_reads_verified_and_keeps_answer_only_beside_it():
  pk = importlib.import_module("pass_at_k")

  def ev(verified, answer):
    return {"pass": verified, "answer_pass": answer}

  evals = {"base": {"in_distribution": [ev([0.1, 0.4], [0.3, 0.9]), ev([0.1, 0.6], [0.3, 0.9])]},
           "rl": {"in_distribution": [ev([0.3, 0.4], [0.5, 0.8]), ev([0.3, 0.4], [0.5, 0.8])]}}
  s = pk.summarize(evals, [1, 2])["in_distribution"]
  np.testing.assert_allclose(s["base_mean"], [0.1, 0.5])
  np.testing.assert_allclose(s["base_std"], [0.0, 0.1])
  np.testing.assert_allclose(s["rl_minus_base"], [0.2, -0.1])
  assert s["first_k_base_catches_up"] == 2
  np.testing.assert_allclose(s["answer_rl_minus_base"], [0.2, -0.1])
  np.testing.assert_allclose(s["answer_base_mean"], [0.3, 0.9])


def test_chance_line():
  import _rl as R

  assert R.chance_line([1, 32]) == ("Chance level of answer-only pass@k (a well-formed uniform "
                                    "guess among the 10 residues): pass@1 0.100, pass@32 0.966; "
                                    "a guess never passes the verified check.")


def test_entropy_minority_verdict_reads_the_seed_spread_and_the_floor():
  em = importlib.import_module("entropy_minority")

  def summary(top20, full, bottom, std=0.02, base=0.5):
    return {"base (SFT)": {"pass@1": (base, 0.0)},
            "all tokens (rho=1.0)": {"pass@1": (full, std)},
            "top 50% (rho=0.5)": {"pass@1": (full, std)},
            "top 20% (rho=0.2)": {"pass@1": (top20, std)},
            "bottom 80%": {"pass@1": (bottom, std)}}

  both = em._verdict("cpu", 2, summary(0.6, 0.6, 0.4), 16)
  assert both.startswith("reproduced: top-20% verified pass@1 0.600") and "Floor" not in both
  assert "No arm lifts" not in both
  still = em._verdict("cpu", 2, summary(0.505, 0.51, 0.45), 16)  # RL barely moved from 0.5
  assert still.startswith("reproduced in form only") and "No arm lifts pass@1" in still
  assert em._verdict("cpu", 2, summary(0.6, 0.6, 0.59), 16).startswith("partly reproduced")
  assert em._verdict("cpu", 2, summary(0.4, 0.6, 0.6), 16).startswith("not reproduced")
  floor = em._verdict("cpu", 2, summary(0.6, 0.6, 0.4, base=0.03), 16)
  assert "Floor effect: the base's verified pass@1 (0.030) is under 0.05" in floor
  assert "Floor" not in em._verdict("cpu", 2, summary(0.6, 0.6, 0.4, base=0.12), 16)
  assert em._verdict("cpu", 1, summary(0.6, 0.6, 0.4), 16).startswith("inconclusive")


def test_dapo_ablation_verdict_names_the_additions_that_help():
  da = importlib.import_module("dapo_ablation")

  def summary(p1s, std=0.02):
    names = ["GRPO", "+clip-higher", "+token-mean", "+overlong shaping", "+dynamic sampling"]
    out, prev = {}, None
    for n, p in zip(names, p1s):
      out[n] = {"pass@1": (p, std), "delta_pass@1_vs_previous": None if prev is None else p - prev}
      prev = p
    return out

  v = da._verdict("cpu", 2, summary([0.4, 0.41, 0.42, 0.42, 0.5]), 0.3, 16)
  assert v.startswith("partly reproduced: the full DAPO recipe beats naive GRPO (0.400 -> 0.500")
  assert "on their own: +dynamic sampling." in v and "Floor" not in v
  assert "No arm lifts pass@1" not in v and "marginal" not in v
  marginal = da._verdict("cpu", 3, summary([0.4, 0.41, 0.42, 0.42, 0.43]), 0.3, 16)
  assert "(0.400 -> 0.430 verified pass@1, seed spread 0.020, by less than twice the spread: " \
      "marginal)" in marginal
  near_base = da._verdict("cpu", 2, summary([0.4, 0.41, 0.42, 0.42, 0.5]), 0.495, 16)
  assert "No arm lifts pass@1 beyond the seed spread above the SFT base (0.495;" in near_base
  assert "naive GRPO lowers verified pass@1 (0.495 -> 0.400) and what the additions gain" \
      in near_base
  still = da._verdict("cpu", 2, summary([0.49, 0.49, 0.49, 0.49, 0.5]), 0.495, 16)
  assert "these short runs barely move the policy" in still
  flat = da._verdict("cpu", 2, summary([0.4, 0.41, 0.4, 0.41, 0.41]), 0.04, 16)
  assert flat.startswith("not reproduced")
  assert "Floor effect: the SFT base's verified pass@1 (0.040) is under 0.05" in flat
  assert da._verdict("cpu", 1, summary([0.4] * 5), 0.5, 16).startswith("inconclusive")


def test_compile_cache_defaults_to_the_workdir_and_none_turns_it_off(tmp_path):
  import _common as C
  import _rl as R
  import jax
  import jax.numpy as jnp

  before = jax.config.jax_compilation_cache_dir
  try:
    args = R.parse_args("x", "doc", ["--workdir", str(tmp_path)])
    assert args.compile_cache == str(tmp_path / "jax_cache") == jax.config.jax_compilation_cache_dir
    y = jax.jit(lambda x: jnp.sin(x) * 3.25 + 0.125)(jnp.arange(5.0))  # a program no test has
    assert os.listdir(tmp_path / "jax_cache")  # its compile was stored
    assert C.machine_info()["compile_cache"] == args.compile_cache
    other = str(tmp_path / "elsewhere")
    assert R.parse_args("x", "doc", ["--compile-cache", other]).compile_cache == other
    assert jax.config.jax_compilation_cache_dir == other
    args = R.parse_args("x", "doc", ["--workdir", str(tmp_path), "--compile-cache", "none"])
    assert args.compile_cache is None and jax.config.jax_compilation_cache_dir is None
    assert C.machine_info()["compile_cache"] is None
    assert np.array_equal(y, jax.jit(lambda x: jnp.sin(x) * 3.25 + 0.125)(jnp.arange(5.0)))
  finally:
    C.compilation_cache(before)


def test_machine_info_records_the_process_start_not_the_write_time():
  import time

  import _common as C

  first = C.machine_info()
  time.sleep(1.1)  # utc_start has one-second resolution
  again = C.machine_info()
  assert first["utc_start"] == again["utc_start"]
  assert first["load_average_at_start"] == again["load_average_at_start"]


def test_swe_rl_verdict_reads_the_gap_and_the_drop_against_the_seed_spread():
  sw = importlib.import_module("swe_rl")

  def summary(sim, exact, base=0.4, std=0.02):
    return {"base": {"exact_pass@1": base}, "similarity reward": {"exact_pass@1": (sim, std)},
            "exact-match reward": {"exact_pass@1": (exact, std)}}

  win = sw._verdict("cpu", 2, summary(0.5, 0.42), 2e-4, 40)
  assert win.startswith("reproduced: exact-match pass@1 similarity - exact = +0.080")
  assert "below the SFT warm start" not in win
  drop = sw._verdict("cpu", 2, summary(0.35, 0.36), 2e-4, 40)
  assert drop.startswith("not reproduced")
  assert "Both GRPO arms end below the SFT warm start (0.400, by 0.040-0.050)" in drop
  assert "below the SFT" not in sw._verdict("cpu", 2, summary(0.39, 0.385), 2e-4, 40)
  assert sw._verdict("cpu", 1, summary(0.5, 0.4), 2e-4, 40).startswith("inconclusive")


def test_task_fingerprint_follows_the_task_code_and_guards_the_run_cache(monkeypatch, capsys):
  R = importlib.import_module("_rl")
  from rljax.tasks import get_task
  from rljax.train import TaskSpec

  spec = TaskSpec(name="general_points", difficulty=("faces=random",))
  fp = R.task_fingerprint(spec)
  assert fp == R.task_fingerprint(spec)  # deterministic
  assert fp != R.task_fingerprint(TaskSpec(name="general_points"))  # other problems
  cls = type(get_task("general_points"))
  old = cls.format_prompt
  monkeypatch.setattr(cls, "format_prompt", lambda self, e: "v2 " + old(self, e))
  assert R.task_fingerprint(spec) != fp  # a prompt-text change alone changes it
  assert R._fresh({"task_fingerprint": fp}, fp, "run")
  assert not R._fresh({"task_fingerprint": "0" * 10}, fp, "run")
  assert "retraining" in capsys.readouterr().err
  assert not R._fresh(None, fp, "run")
  assert R._fresh({}, fp, "legacy-run") and R._fresh({}, fp, "legacy-run")
  assert capsys.readouterr().err.count("without a task fingerprint") == 1


def test_a_chained_run_is_retrained_when_the_run_it_starts_from_was(tmp_path, capsys):
  # sft_vs_rl's chunks start from the previous chunk's folder; the cache key holds that path,
  # which stays when the parent is retrained, so the parent's record is checked too.
  R = importlib.import_module("_rl")
  parent, child = str(tmp_path / "c0"), str(tmp_path / "c1")
  os.makedirs(parent)
  os.makedirs(child)
  R._write_done(parent, {"wall_s": 1.0})
  R._write_done(child, {"parent": R._parent_identity(parent)})
  assert R._same_parent(R._read_done(child), parent, child)
  R._write_done(parent, {"wall_s": 2.0})  # the parent retrained
  assert not R._same_parent(R._read_done(child), parent, child)
  assert R._same_parent({"parent": None}, None, child)  # no parent
  assert R._parent_identity(str(tmp_path / "hf-checkpoint")) is None  # not a study run folder
  # Records from before parents were recorded: stale only if the parent finished after them.
  R._write_done(child, {})
  assert R._same_parent({}, parent, child)
  later = os.path.getmtime(R._done_marker(child)) + 10
  os.utime(R._done_marker(parent), (later, later))
  assert not R._same_parent({}, parent, child)
  assert "older than the run it starts from" in capsys.readouterr().err
