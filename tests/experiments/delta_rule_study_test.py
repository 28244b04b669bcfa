"""Smoke test of experiments/delta_rule.py (output files and schema) and its MQAR / Deep Delta
pieces (hand-checked values); not the scientific result."""

import dataclasses
import importlib
import json
import os

import numpy as np
import pytest

M = importlib.import_module("delta_rule")  # experiments/ is on sys.path (conftest.py)


def test_mqar_batch_queries_recall_their_values():
  rng = np.random.default_rng(0)
  x, y, w = M.mqar_batch(rng, rows=16, seq_len=32, vocab=64, kv=4, power_a=0.01)
  assert x.shape == y.shape == w.shape == (16, 32)
  assert np.all(w.sum(axis=1) == 4)
  for r in range(16):
    keys, vals = x[r, 0:8:2], x[r, 1:8:2]
    assert len(set(keys)) == 4 and np.all((keys >= 1) & (keys < 32)) and np.all(vals >= 32)
    table = dict(zip(keys.tolist(), vals.tolist(), strict=True))
    q = np.nonzero(w[r])[0]
    assert np.all(q >= 8) and np.all((q - 8) % 2 == 0)
    assert sorted(x[r, q].tolist()) == sorted(keys.tolist())
    assert [table[k] for k in x[r, q].tolist()] == y[r, q].tolist()


def test_mixed_batch_splits_the_rows_over_the_kv_counts():
  p = dataclasses.replace(M.PRESETS["cpu"], batch=10, kv_pairs=(2, 4, 8))
  x, y, w = M.mixed_batch(np.random.default_rng(0), p)
  assert x.shape == y.shape == w.shape == (10, p.seq_len)
  # np.array_split: 4 + 3 + 3 rows with 2, 4 and 8 queries each
  np.testing.assert_array_equal(w.sum(axis=1), [2] * 4 + [4] * 3 + [8] * 3)
  with pytest.raises(ValueError, match="batch"):
    dataclasses.replace(p, batch=2)


def test_deep_delta_arms_are_rljax_models_configs_and_the_verdict_takes_the_best_setting():
  p = M.PRESETS["smoke"]
  cfg = M.build_config(p, "attention + deep_delta (v = linear)")
  assert cfg.residual == "deep_delta" and cfg.mixers == ("attention",) * p.num_layers
  assert M.deep_delta_settings(cfg)["deep_delta_value"] == "linear"
  assert M.deep_delta_settings(M.build_config(p, "attention + deep_delta"))[
      "deep_delta_value"] == "constant"
  assert M.deep_delta_settings(M.build_config(p, "deltanet")) is None
  assert M._additive_of("attention + deep_delta (v = linear)") == "attention"
  assert M._additive_of("hybrid (deltanet + attention)") is None
  res = {"preset": {"kv_pairs": [2, 8]},
         "runs": [{"label": lab, "final_acc_by_kv": {"2": [a2], "8": [a8]}}
                  for lab, a2, a8 in [("attention", 1.0, 1.0), ("deltanet", 1.0, 0.95),
                                      ("attention + deep_delta", 0.4, 0.15),
                                      ("attention + deep_delta (v = linear)", 0.98, 0.93)]]}
  v, why = M.verdict(res)
  assert v == "reproduced (delta-rule recall); Deep Delta as a drop-in residual: reproduced"
  assert "attention + deep_delta minus attention 2: -0.60, 8: -0.85" in why
  assert "attention + deep_delta (v = linear) minus attention 2: -0.02, 8: -0.07" in why
  res["runs"].pop()
  assert M.verdict(res)[0].endswith("Deep Delta as a drop-in residual: not reproduced")


@pytest.mark.slow
def test_smoke_preset_writes_results(tmp_path):
  out = str(tmp_path)
  M.main(["--preset", "smoke", "--out", out, "--variants", "attention",
          "deltanet + deep_delta"])
  for f in ("results.json", "README.md", "mqar_accuracy.png", "mqar_curves.png",
            "throughput.png"):
    assert os.path.getsize(os.path.join(out, f)) > 0, f
  with open(os.path.join(out, "results.json")) as f:
    res = json.load(f)
  assert res["study"] == "delta_rule" and res["preset_name"] == "smoke"
  assert {"machine", "preset", "runs", "verdict", "verdict_reason", "wall_s"} <= set(res)
  kvs = [str(k) for k in res["preset"]["kv_pairs"]]
  assert [r["label"] for r in res["runs"]] == ["attention", "deltanet + deep_delta"]
  for r in res["runs"]:
    assert set(r["final_acc_by_kv"]) == set(kvs)
    seeds = res["preset"]["seeds"]
    assert np.asarray(r["train_loss"]).shape == (len(seeds), res["preset"]["steps"])
    assert np.all(np.isfinite(r["train_loss"]))
    assert set(r["eval_acc_by_kv"]) == set(kvs)
    for k in kvs:
      accs = np.asarray(r["eval_acc_by_kv"][k])
      assert accs.shape == (len(seeds), len(r["eval_steps"]))
      assert np.all((accs >= 0) & (accs <= 1))
      assert len(r["final_acc_by_kv"][k]) == len(seeds)
    for key in ("train_tokens_per_s", "forward_tokens_per_s", "decode_tokens_per_s"):
      assert r[key] > 0, key
  assert res["runs"][0]["deep_delta"] is None
  assert res["runs"][1]["deep_delta"]["deep_delta_value"] == "constant"
  readme = open(os.path.join(out, "README.md")).read()
  assert "Verdict:" in readme and "| attention |" in readme


def _res(accs):
  kvs = [2, 8]
  return {"preset": {"kv_pairs": kvs},
          "runs": [{"label": lab, "final_acc_by_kv": {str(k): [a] for k, a in zip(kvs, acc)}}
                   for lab, acc in accs.items()]}


def test_verdict_reads_the_claims_only_against_a_converged_attention_reference():
  M = importlib.import_module("delta_rule")
  v, why = M.verdict(_res({"attention": [0.3, 0.1], "deltanet": [0.2, 0.1]}))
  assert v.startswith("not reproduced at this budget (inconclusive)")
  v, why = M.verdict(_res({"attention": [0.54, 0.17], "deltanet": [0.83, 0.29]}))
  assert v == "inconclusive at this budget" and "2: 0.54, 8: 0.17" in why
  v, why = M.verdict(_res({"attention": [1.0, 0.95], "deltanet": [0.98, 0.9]}))
  assert v == "reproduced" and "DeltaNet vs attention accuracy gap per kv count (2: +0.02" in why
  v, _ = M.verdict(_res({"attention": [1.0, 0.95], "deltanet": [0.98, 0.6]}))
  assert v == "partly reproduced"
  v, why = M.verdict(_res({"attention": [1.0, 0.95], "deltanet": [0.98, 0.9],
                           "attention + deep_delta": [0.4, 0.16]}))
  assert v == "reproduced (delta-rule recall); Deep Delta as a drop-in residual: not reproduced"
  assert "Deep Delta (its best setting) falls up to 0.79 below" in why
  v, _ = M.verdict(_res({"attention": [1.0, 0.95], "deltanet": [0.98, 0.9],
                         "attention + deep_delta": [0.97, 0.9]}))
  assert v.endswith("Deep Delta as a drop-in residual: reproduced")
