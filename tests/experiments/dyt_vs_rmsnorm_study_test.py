"""Smoke test of experiments/dyt_vs_rmsnorm.py: output files and their schema, not the result."""

import dataclasses
import importlib
import json
import os

import numpy as np
import pytest

M = importlib.import_module("dyt_vs_rmsnorm")  # experiments/ is on sys.path (conftest.py)


def test_corpus_is_a_char_stream_with_heldout_split():
  corpus = M.make_corpus(M.PRESETS["smoke"])
  assert corpus["train"].dtype == np.int32 and corpus["held"].dtype == np.int32
  assert corpus["train"].max() < len(corpus["vocab"])
  assert "=" in corpus["vocab"] and "<" in corpus["vocab"]
  x, y = M.windows(corpus["train"], np.array([0, 5]), 8)
  np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


@pytest.mark.slow
def test_smoke_preset_writes_results(tmp_path):
  out = str(tmp_path)
  M.main(["--preset", "smoke", "--out", out, "--variants", "rmsnorm", "dyt-llama 0.8/0.2/0.2"])
  for f in ("results.json", "README.md", "loss_curves.png", "final_loss.png"):
    assert os.path.getsize(os.path.join(out, f)) > 0, f
  with open(os.path.join(out, "results.json")) as f:
    res = json.load(f)
  p = res["preset"]
  assert res["study"] == "dyt_vs_rmsnorm" and res["preset_name"] == "smoke"
  assert {"machine", "corpus", "runs", "verdict", "verdict_reason", "wall_s"} <= set(res)
  assert [r["norm"] for r in res["runs"]] == ["rmsnorm", "dyt"]
  for r in res["runs"]:
    assert np.asarray(r["train_loss"]).shape == (len(p["seeds"]), p["steps"])
    assert np.asarray(r["heldout_loss"]).shape == (len(p["seeds"]), len(r["eval_steps"]))
    assert np.all(np.isfinite(r["final_heldout_loss"]))
    assert r["seeds"] == p["seeds"]
  assert res["runs"][1]["learned_alpha"], "DyT alpha values are recorded"
  assert res["runs"][1]["alpha_init"] == {"attn": 0.8, "mlp": 0.2, "final": 0.2}
  assert res["runs"][1]["embedding_scale"] and not res["runs"][1]["dyt_bias"]
  assert len(res["runs"][1]["learned_embed_scale"]) == len(p["seeds"])
  assert res["runs"][0]["learned_embed_scale"] is None
  assert res["runs"][1]["model_config"]["embedding_scale"] is True
  readme = open(os.path.join(out, "README.md")).read()
  assert "Verdict:" in readme and "| rmsnorm |" in readme


def _run(label, alpha, train, held, learned=None):
  return {"label": label, "alpha_init": {"attn": alpha, "mlp": alpha, "final": alpha},
          "train_loss": np.asarray(train), "heldout_loss": np.asarray(held),
          "eval_steps": [0, 50, 100], "final_heldout_loss": np.asarray(held)[:, -1],
          "learned_alpha": {} if learned is None else {"attn": [learned]},
          "model_config": {"d_model": 48}}


def test_miss_reasons_are_measured_not_assumed():
  fast = [[4.0, 3.0, 2.0, 1.5]] * 2
  slow = [[4.0, 3.9, 3.8, 3.0]] * 2
  base = _run("rmsnorm", 0.0, fast, [[4.0, 2.0, 1.5]] * 2)
  closing = _run("dyt 0.5", 0.5, slow, [[4.0, 3.0, 1.8]] * 2, learned=0.7)
  widening = _run("dyt 0.2", 0.2, slow, [[4.0, 2.2, 2.5]] * 2, learned=0.1)
  text = M._miss_reasons(base, closing, [closing, widening])
  assert "falls 0.5 nats below its start after 1 steps, the best DyT's after 3" in text
  assert "shrinks from 1.000 at step 50 to 0.300 at step 100" in text
  assert "The best init is the largest alpha we tried" in text
  assert "grew above its init in 1 of 2 DyT arms." in text
  grown = _run("dyt 0.5", 0.5, slow, [[4.0, 3.0, 1.8]] * 2, learned=0.7)
  assert "ours is 48)." in M._miss_reasons(base, grown, [grown])
  text = M._miss_reasons(base, widening, [closing, widening])
  assert "does not shrink in the second half" in text
  assert "The best init (dyt 0.2) is not the largest alpha we tried" in text
  verdict, why = M.verdict([base, closing, widening])
  assert verdict == "not reproduced at this budget" and "shrinks" in why


def test_presets_name_known_variants_with_the_baseline_first():
  for name, p in M.PRESETS.items():
    assert p.variants[0] == "rmsnorm" and len(p.variants) >= 2, name
  labels = [v.label for v in M.VARIANTS]
  assert len(set(labels)) == len(labels)
  smoke = M.PRESETS["smoke"]
  with pytest.raises(ValueError, match="variants entries"):
    dataclasses.replace(smoke, variants=("rmsnorm", "dyt 9/9/9"))
  with pytest.raises(ValueError, match="baseline 'rmsnorm' first"):
    dataclasses.replace(smoke, variants=("dyt 0.5/0.5/0.5", "rmsnorm"))


def test_recipe_note_compares_the_best_arm_with_and_without_the_embedding_scalar():
  base = _run("rmsnorm", 0.0, [[4.0, 1.0]], [[4.0, 1.0, 1.0]])
  plain = _run("dyt 0.5", 0.5, [[4.0, 1.5]], [[4.0, 1.5, 1.3]])
  llama_a = dict(_run("dyt-llama 1", 1.0, [[4.0, 1.1]], [[4.0, 1.1, 1.05]]), embedding_scale=True)
  llama_b = dict(_run("dyt-llama 2", 2.0, [[4.0, 1.1]], [[4.0, 1.1, 1.02]]), embedding_scale=True)
  text = M._recipe_note(base, [plain, llama_a, llama_b])
  assert "without it (dyt 0.5) ends +0.300" in text
  assert "with it (dyt-llama 2) +0.020" in text
  assert "helps here" in text
  assert "does not help" in M._recipe_note(base, [llama_a, dict(plain, embedding_scale=False,
                                                                   final_heldout_loss=[1.01])])
  assert M._recipe_note(base, [plain]) == ""
  # two seeds each, 0.02 apart in the mean but 0.1 apart between seeds: within the spread
  noisy_plain = dict(plain, final_heldout_loss=np.array([0.90, 1.00]))
  noisy_llama = dict(llama_a, final_heldout_loss=np.array([0.88, 0.98]))
  assert "makes no difference beyond the seed spread" in M._recipe_note(
      base, [noisy_plain, noisy_llama])


def test_lr_grid_expands_every_variant_and_the_verdict_compares_each_norm_at_its_best_lr():
  p = dataclasses.replace(M.PRESETS["smoke"], variants=("rmsnorm", "dyt 0.5/0.5/0.5"),
                          lrs=(1e-3, 1e-2))
  got = [(a.label, a.lr) for a in M.arms(p)]
  assert got == [("rmsnorm @ lr 0.001", 1e-3), ("rmsnorm @ lr 0.01", 1e-2),
                 ("dyt 0.5/0.5/0.5 @ lr 0.001", 1e-3), ("dyt 0.5/0.5/0.5 @ lr 0.01", 1e-2)]
  assert [a.label for a in M.arms(dataclasses.replace(p, lrs=()))] == ["rmsnorm",
                                                                     "dyt 0.5/0.5/0.5"]
  with pytest.raises(ValueError, match="learning rates must be positive"):
    dataclasses.replace(p, lrs=(1e-3, 0.0))

  def run(label, norm, lr, held):
    r = _run(label, 0.5, [[4.0, 1.0]] * 2, [[4.0, 2.0, h] for h in held])
    return dict(r, norm=norm, lr=lr, variant=label.split(" @ lr ")[0])

  runs = [run("rmsnorm @ lr 0.001", "rmsnorm", 1e-3, [1.08, 1.10]),
          run("rmsnorm @ lr 0.01", "rmsnorm", 1e-2, [1.12, 1.14]),
          run("dyt 0.5 @ lr 0.001", "dyt", 1e-3, [1.30, 1.32]),
          run("dyt 0.5 @ lr 0.01", "dyt", 1e-2, [0.90, 0.92])]
  v, why = M.verdict(runs, shared_lr=1e-3)
  assert v == "reproduced (DyT better)"
  assert "(dyt 0.5 @ lr 0.01) ends 0.180 nats/char below the best RMSNorm arm (rmsnorm @ lr " \
         "0.001)" in why
  assert ("RMSNorm's best final loss per lr: 0.001: 1.090, 0.01: 1.130 (best at the grid's "
          "smallest lr: its optimum may lie beyond)") in why
  assert "DyT's best final loss per lr: 0.001: 1.310, 0.01: 0.910 (best at the grid's largest" \
      in why
  assert "At one shared lr (0.001, the preset's), DyT ends +0.220 from RMSNorm" in why
  assert [r["label"] for r in M._best_per_variant(runs)] == ["rmsnorm @ lr 0.001",
                                                             "dyt 0.5 @ lr 0.01"]
  assert M._lr_note(runs[:1] + runs[2:3], 1e-3) == ""  # one lr: no note
  # A diverged arm (NaN on one seed) is never the best one, and the verdict names it.
  blown = run("dyt 0.5 @ lr 0.1", "dyt", 1e-1, [0.5, float("nan")])
  v, why = M.verdict([*runs, blown], shared_lr=1e-3)
  assert v == "reproduced (DyT better)" and "(dyt 0.5 @ lr 0.01) ends 0.180" in why
  assert "Diverged (a non-finite final loss on some seed): dyt 0.5 @ lr 0.1." in why
  assert "the final loss spans 0.910 to 1.310" in why


def test_dyt_lrs_give_the_dyt_arms_their_own_grid_and_edges_are_read_per_norm():
  p = dataclasses.replace(M.PRESETS["smoke"], variants=("rmsnorm", "dyt 0.5/0.5/0.5"),
                          lrs=(3e-4, 1e-3), dyt_lrs=(1e-3, 1e-2))
  assert [(a.label, a.lr) for a in M.arms(p)] == [
      ("rmsnorm @ lr 0.0003", 3e-4), ("rmsnorm @ lr 0.001", 1e-3),
      ("dyt 0.5/0.5/0.5 @ lr 0.001", 1e-3), ("dyt 0.5/0.5/0.5 @ lr 0.01", 1e-2)]
  assert [a.lr for a in M.arms(dataclasses.replace(p, lrs=()))] == [None, 1e-3, 1e-2]  # None: p.lr
  with pytest.raises(ValueError, match="learning rates must be positive"):
    dataclasses.replace(p, dyt_lrs=(-1e-3,))
  assert M._grid_text(dataclasses.asdict(p)) == ("peak lr 0.0003, 0.001 for RMSNorm and "
                                                 "0.001, 0.01 for every DyT variant")
  assert M._grid_text(dataclasses.asdict(dataclasses.replace(p, dyt_lrs=()))) == (
      "peak lr 0.0003, 0.001 (every variant at each)")

  def run(norm, lr, held):
    r = _run(f"{norm} @ lr {lr:g}", 0.5, [[4.0, 1.0]] * 2, [[4.0, 2.0, h] for h in held])
    return dict(r, norm=norm, lr=lr, variant=norm)

  # RMSNorm best at 1e-3, the top of its own grid though inside the union of both grids.
  runs = [run("rmsnorm", 3e-4, [1.20, 1.20]), run("rmsnorm", 1e-3, [1.10, 1.10]),
          run("dyt", 1e-3, [1.30, 1.30]), run("dyt", 1e-2, [1.00, 1.00])]
  note = M._lr_note(runs, 1e-3)
  assert "RMSNorm's best final loss per lr: 0.0003: 1.200, 0.001: 1.100 (best at the grid's " \
         "largest lr" in note
  assert "DyT's best final loss per lr: 0.001: 1.300, 0.01: 1.000 (best at the grid's largest" \
      in note
  runs[0]["final_heldout_loss"] = [1.0, 1.0]  # best at 3e-4 now: the smallest of its grid
  assert "0.001: 1.100 (best at the grid's smallest lr" in M._lr_note(runs, 1e-3)


def test_a_learning_rate_grid_as_replicas_equals_one_run_per_lr():
  """make_steps(lr_per_replica=True) with a peak-1 AdamW == a separate AdamW per lr."""
  import jax

  C = importlib.import_module("_common")
  cfg = M.TransformerConfig(vocab_size=11, d_model=16, num_layers=1, num_heads=2, mlp_dim=32,
                            norm="dyt")
  mesh = C.data_mesh()
  seeds, lrs, steps = (0, 1), (3e-3, 3e-2), 4
  rng = np.random.default_rng(0)
  xs = rng.integers(0, 11, (steps, len(seeds), 8, 8))  # 8 rows: the test mesh has 8 devices
  w = np.ones((len(seeds), 8, 8), np.float32)
  g, params, rest, one = C.init_replicas(cfg, seeds)
  _, opt = C.adamw(1.0, steps, 1, 0.1, one)
  train, _ = C.make_steps(g, opt, mesh, lr_per_replica=True)
  grid_p, grid_r = C.tile_replicas(params, len(lrs)), C.tile_replicas(rest, len(lrs))
  grid_o = C.init_opt_state(opt, grid_p)
  lr_R = np.repeat(np.asarray(lrs, np.float32), len(seeds))
  grid_loss = []
  for x in xs:
    x2 = np.tile(x, (len(lrs), 1, 1))
    grid_p, grid_o, loss = train(grid_p, grid_o, grid_r, lr_R, x2, x2, np.tile(w, (2, 1, 1)))
    grid_loss.append(np.asarray(loss))
  for i, lr in enumerate(lrs):
    g, p, r, one = C.init_replicas(cfg, seeds)
    _, opt_lr = C.adamw(lr, steps, 1, 0.1, one)
    train_lr, _ = C.make_steps(g, opt_lr, mesh)
    o = C.init_opt_state(opt_lr, p)
    for k, x in enumerate(xs):
      p, o, loss = train_lr(p, o, r, x, x, w)
      np.testing.assert_allclose(np.asarray(loss), grid_loss[k][i * 2:(i + 1) * 2], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(grid_p)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i * 2:(i + 1) * 2], atol=1e-6)
  assert not np.allclose(grid_loss[-1][:2], grid_loss[-1][2:]), "the lrs give different runs"


def test_arms_group_by_variant_for_one_compile_each():
  p = dataclasses.replace(M.PRESETS["smoke"], variants=("rmsnorm", "dyt 0.5/0.5/0.5"),
                          lrs=(3e-4, 1e-3), dyt_lrs=(1e-3, 1e-2, 2e-2))
  got = [[a.label for a in g] for g in M.groups(M.arms(p))]
  assert got == [["rmsnorm @ lr 0.0003", "rmsnorm @ lr 0.001"],
                 ["dyt 0.5/0.5/0.5 @ lr 0.001", "dyt 0.5/0.5/0.5 @ lr 0.01",
                  "dyt 0.5/0.5/0.5 @ lr 0.02"]]
  with pytest.raises(ValueError, match="arms_ must be one variant"):
    M.run_variant(p, M.make_corpus(p), M.arms(p)[1:3], None, None)


def test_variant_lrs_give_one_variant_its_own_grid_and_the_command_line_replaces_them():
  import argparse

  p = dataclasses.replace(M.PRESETS["smoke"], variants=("rmsnorm", "dyt 0.5/0.5/0.5",
                                                        "dyt-llama 1/1/1"),
                          lrs=(3e-4, 1e-3), dyt_lrs=(1e-3, 1e-2),
                          variant_lrs=(("dyt 0.5/0.5/0.5", (1e-2,)),))
  assert [(a.label, a.lr) for a in M.arms(p)] == [
      ("rmsnorm @ lr 0.0003", 3e-4), ("rmsnorm @ lr 0.001", 1e-3),
      ("dyt 0.5/0.5/0.5 @ lr 0.01", 1e-2),
      ("dyt-llama 1/1/1 @ lr 0.001", 1e-3), ("dyt-llama 1/1/1 @ lr 0.01", 1e-2)]
  assert M._grid_text(dataclasses.asdict(p)) == (
      "peak lr 0.0003, 0.001 for `rmsnorm`; 0.01 for `dyt 0.5/0.5/0.5`; "
      "0.001, 0.01 for `dyt-llama 1/1/1`")
  # as read back from results.json (lists, not tuples)
  as_json = dict(dataclasses.asdict(p), variant_lrs=[["dyt 0.5/0.5/0.5", [1e-2]]])
  assert M._grid_text(as_json) == M._grid_text(dataclasses.asdict(p))
  for bad, match in ((((("dyt 9/9/9", (1e-2,)),)), "not in variants"),
                     ((("dyt 0.5/0.5/0.5", ()),), "empty grid"),
                     ((("dyt 0.5/0.5/0.5", (1e-2,)), ("dyt 0.5/0.5/0.5", (2e-2,))), "twice"),
                     ((("dyt 0.5/0.5/0.5", (-1e-2,)),), "must be positive")):
    with pytest.raises(ValueError, match=match):
      dataclasses.replace(p, variant_lrs=bad)

  def args(**kw):
    return argparse.Namespace(**{k: None for k in ("steps", "seeds", "variants", "lr", "lrs",
                                                    "dyt_lrs")} | kw)

  assert M.with_overrides(p, args()) == p
  # --dyt-lrs puts every DyT variant on the given grid, the cpu preset's full grid included
  full = M.with_overrides(p, args(dyt_lrs=[1e-3, 2e-2]))
  assert full.variant_lrs == () and [a.lr for a in M.arms(full)][2:] == [1e-3, 2e-2] * 2
  assert M.with_overrides(p, args(lrs=[1e-3])).variant_lrs == ()
  assert M.with_overrides(p, args(lr=1e-3)).variant_lrs == ()
  # --variants keeps the own grids of the variants it keeps, and drops the others'
  kept = M.with_overrides(p, args(variants=["rmsnorm", "dyt-llama 1/1/1"]))
  assert kept.variant_lrs == () and kept.dyt_lrs == (1e-3, 1e-2)
  assert M.with_overrides(p, args(variants=["rmsnorm", "dyt 0.5/0.5/0.5"])).variant_lrs == \
      p.variant_lrs
  cpu = M.PRESETS["cpu"]
  assert len(M.arms(cpu)) == 9
  assert len(M.arms(M.with_overrides(cpu, args(dyt_lrs=list(cpu.dyt_lrs))))) == 11
