"""experiments/power_law.py on a tiny synthetic results tree: exact power laws are recovered."""

import importlib
import json
import os

import numpy as np
import pytest

M = importlib.import_module("power_law")  # experiments/ is on sys.path (conftest.py)


def _write(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f)


@pytest.fixture
def tree(tmp_path):
  root = tmp_path / "results"
  steps = np.arange(1, 61, dtype=np.float64)
  loss = 3.0 * steps**-0.5 + 1.2                       # a decreasing LM loss
  ev = np.arange(0, 61, 6, dtype=np.float64)
  held = 2.0 * np.maximum(ev, 1) ** -0.8 + 1.5
  _write(str(root / "dyt_vs_rmsnorm" / "results.json"), {"runs": [{
      "label": "rmsnorm", "seeds": [0, 1],
      # two seeds at +-0.01: the mean is the exact law
      "train_loss": [(loss + 0.01).tolist(), (loss - 0.01).tolist()],
      "eval_steps": ev.tolist(), "heldout_loss": [held.tolist(), held.tolist()]}]})
  reward = 0.8 - 0.6 * steps[:40] ** -0.7               # a rising RL reward
  _write(str(root / "toy_rl" / "results.json"), {"seeds": [0], "arms": {
      "grpo": [{"curves": {"step": steps[:40].tolist(), "reward_mean": reward.tolist()}}],
      "base": [{"before": {}}]}})
  os.makedirs(root / "sft_vs_rl")                       # a study that has not been run
  (root / "sft_vs_rl" / "README.md").write_text("not yet run\n")
  metrics = tmp_path / "run" / "metrics.jsonl"
  os.makedirs(metrics.parent)
  with open(metrics, "w") as f:
    for s in range(1, 51):
      f.write(json.dumps({"step": s, "loss": 5.0 * s**-0.3 + 0.5}) + "\n")
  return root, metrics


def _curve(res, group, label):
  (c,) = [c for c in res["curves"] if c["group"] == group and c["label"] == label]
  return c


def test_recovers_exact_laws_and_writes_results(tree, tmp_path, capsys):
  root, metrics = tree
  out = str(tmp_path / "out")
  res = M.main(["--preset", "smoke", "--out", out, "--results-root", str(root),
                "--metrics", f"{metrics}:loss"])
  assert "sft_vs_rl: no results.json" in capsys.readouterr().out
  assert res["skipped"] == {"sft_vs_rl": "no results.json (not yet run)"}

  for group, label, abc, sign in [("train loss", "rmsnorm", (3.0, 0.5, 1.2), 1.0),
                                  ("held-out loss", "rmsnorm", (2.0, 0.8, 1.5), 1.0),
                                  ("reward_mean", "grpo", (0.6, 0.7, -0.8), -1.0),
                                  ("loss", "run", (5.0, 0.3, 0.5), 1.0)]:
    c = _curve(res, group, label)
    for w in ("full", "second half", "last third"):
      f = c["fits"]["windows"][w]
      if group == "held-out loss" and w == "last third":  # steps 42, 48, 54, 60: 4 points
        assert f["fit"]["n_points"] == 4
      fit = f["fit"]
      np.testing.assert_allclose([fit["a"], fit["b"], fit["c"]], abc, rtol=2e-3,
                                 err_msg=f"{group} {w}")
      assert fit["sign"] == sign and fit["r2"] > 0.9999
      assert f["check"]["sse_ratio"] <= 1.05, f["check"]
      # a window of fewer than 10 points is flagged, nothing else is
      assert f["flags"] == ([] if fit["n_points"] >= 10 else
                            [f"only {fit['n_points']} points (< 10): b, c poorly determined"])
    full = c["fits"]["windows"]["full"]
    x_last = c["fits"]["x_last"]
    law = sign * (abc[0] * np.asarray([2 * x_last, 10 * x_last]) ** -abc[1] + abc[2])
    np.testing.assert_allclose(full["forecast_y"], law, rtol=1e-3)
    np.testing.assert_allclose(full["asymptote"], sign * abc[2], rtol=2e-3)
    assert c["fits"]["backtest"]["beats_flat"] and c["fits"]["extrapolation_trusted"]

  held = _curve(res, "held-out loss", "rmsnorm")
  assert held["dropped_nonpositive_x"] == 1 and held["x"][0] == 6.0  # step 0 left out
  assert [c["label"] for c in res["curves"] if c["study"] == "toy_rl"] == ["grpo"]

  with open(os.path.join(out, "results.json")) as f:
    saved = json.load(f)
  assert {"study", "preset", "config", "machine", "wall_time_s", "command", "inputs",
          "skipped", "summary", "verdict", "curves", "figures"} <= set(saved)
  assert saved["summary"]["LM train loss (every step)"]["trusted"] == 1
  assert saved["summary"]["LM held-out loss (evals)"]["described"] == 1
  assert saved["summary"]["metrics.jsonl"]["trusted"] == 1
  for fig in saved["figures"]:
    assert os.path.getsize(os.path.join(out, fig)) > 0, fig
  readme = open(os.path.join(out, "README.md")).read()
  assert "Verdict:" in readme and "| rmsnorm |" in readme and "fit_quality.png" in readme

  # --render-only redraws from results.json without the inputs.
  os.remove(os.path.join(out, "README.md"))
  M.main(["--out", out, "--render-only"])
  assert "| grpo |" in open(os.path.join(out, "README.md")).read()


def test_flags_a_poor_fit_and_bad_inputs(tmp_path):
  p = M.PRESETS["cpu"]
  rng = np.random.default_rng(0)
  x = np.arange(1, 31, dtype=np.float64)
  noisy = M._curve("s", "g", "noise", "accuracy", x, 0.1 + rng.normal(0, 0.05, x.size), "src")
  fits = M.fit_curve(noisy, p)
  assert fits["windows"]["full"]["fit"]["r2"] < 0.9
  assert not fits["extrapolation_trusted"]
  assert any("poor fit" in r for r in fits["extrapolation_caveats"])
  # A constant curve (a verified pass@k of 0 at every k) has no law to identify: not fitted.
  flat = M._curve("s", "g", "zeros", "pass@k", x, np.zeros_like(x), "src")
  assert M.fit_curve(flat, p) == {"windows": {}, "skipped": "constant (every point 0)"}

  bad = tmp_path / "dyt_vs_rmsnorm" / "results.json"
  _write(str(bad), {"runs": [{"label": "rmsnorm", "seeds": [0]}]})
  msg = r"results.json runs/0 \(rmsnorm\): missing key 'train_loss'"
  with pytest.raises(ValueError, match=msg):
    M.read_study(str(bad), "dyt_vs_rmsnorm", p)
  with pytest.raises(ValueError, match="PATH:COLUMN"):
    M.parse_metrics_arg("no-colon")
  with pytest.raises(ValueError, match="no file"):
    M.parse_metrics_arg(str(tmp_path / "missing.jsonl") + ":loss")


def test_reads_nested_arms_and_eval_points(tmp_path):
  # difficulty: arms/bands/<band>/[runs] and arms/transfer/<e>/{"runs": [...]};
  # sft_vs_rl: <run>/points/<i>/{step, eval/<split>/pass@1}, averaged over seeds.
  steps = list(range(1, 13))
  run = {"curves": {"step": steps, "accuracy": [0.1 * s ** 0.3 for s in steps]}}
  path = tmp_path / "difficulty.json"
  _write(str(path), {"seeds": [0], "arms": {
      "bands": {"id": [run], "edge": [run]},
      "transfer": {"0.01": {"pretrain_run": "x", "before": {}, "runs": [run]}}}})
  curves = M.read_study(str(path), "difficulty", M.Preset())
  assert [c["label"] for c in curves] == ["bands/id", "bands/edge", "transfer/0.01"]
  np.testing.assert_allclose(curves[2]["y"], run["curves"]["accuracy"])

  def points(ys):
    return {"points": [{"step": s, "eval": {"ood": {"pass@1": y}}} for s, y in zip([0, 5, 10], ys)]}

  path = tmp_path / "sft_vs_rl.json"
  _write(str(path), {"seeds": [0, 1], "arms": {"more SFT": [points([0.5, 0.4, 0.3]),
                                                            points([0.5, 0.2, 0.1])]}})
  (c,) = M.read_study(str(path), "sft_vs_rl", M.Preset())
  assert (c["group"], c["label"], c["n_replicas"]) == ("eval pass@1 (ood)", "more SFT", 2)
  np.testing.assert_allclose(c["x"], [5, 10])  # step 0 dropped (a power law needs x > 0)
  np.testing.assert_allclose(c["y"], [0.3, 0.2])
  bad = {"seeds": [0, 1], "arms": {"a": [points([1, 1, 1]), {"points": [{"step": 7}]}]}}
  _write(str(path), bad)
  with pytest.raises(ValueError, match="different steps"):
    M.read_study(str(path), "sft_vs_rl", M.Preset())


def test_delta_rule_curves_mixed_kv_layout_and_the_earlier_per_kv_layout():
  steps = [0, 5, 10]
  mixed = {"runs": [{"label": "attention", "train_loss": [[3.0, 2.0, 1.0], [3.0, 2.0, 1.5]],
                     "eval_steps": steps,
                     "eval_loss_by_kv": {"2": [[3.0, 1.0, 0.5], [3.0, 1.0, 0.7]],
                                         "8": [[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]}}]}
  cs = {c["group"]: c for c in M.curves_delta(mixed, "r.json")}
  assert set(cs) == {"train loss (kv counts mixed)", "held-out query loss, 2 kv pairs",
                     "held-out query loss, 8 kv pairs"}
  np.testing.assert_allclose(cs["train loss (kv counts mixed)"]["y"], [3.0, 2.0, 1.25])
  q2 = cs["held-out query loss, 2 kv pairs"]
  np.testing.assert_allclose(q2["x"], [5, 10])  # step 0 left out
  np.testing.assert_allclose(q2["y"], [1.0, 0.6])
  assert q2["n_replicas"] == 2
  assert M.kind_of(q2) == "LM held-out loss (evals)"
  assert M.kind_of(cs["train loss (kv counts mixed)"]) == "LM train loss (every step)"
  old = {"runs": [{"label": "deltanet", "train_loss": [[2.0, 1.0], [4.0, 3.0]],
                   "replicas": [{"kv_pairs": 2, "seed": 0}, {"kv_pairs": 4, "seed": 0}]}]}
  groups = [c["group"] for c in M.curves_delta(old, "r.json")]
  assert groups == ["train loss, 2 kv pairs", "train loss, 4 kv pairs"]
  with pytest.raises(ValueError, match="eval_loss_by_kv"):
    M.curves_delta({"runs": [{"label": "x", "train_loss": [[1.0]], "eval_steps": [1]}]}, "r")
