"""Benchmark: generated tokens/s of :func:`rljax.rollout.generate` vs transformers ``generate``.

Both run the same randomly initialised Qwen2-architecture model: built and initialised with
transformers (PyTorch CPU), written with ``save_pretrained`` to a temporary folder and read back
with :func:`rljax.models.hf.from_pretrained`. Sampling at temperature 1 over the full vocabulary
(transformers: ``do_sample=True, top_k=0, top_p=1``), no EOS and exactly ``--new`` tokens per row
(transformers: ``min_new_tokens = max_new_tokens``, ``eos_token_id=None``), so both do the same
work. torch uses ``torch.set_num_threads(os.cpu_count())``; fp32 everywhere.

Presets:
  small: the experiments' cpu policy (2 layers, D 64, 4 heads, MLP 256, vocab 84, tied);
    batch 128, prompt 96, 96 new
  tiny: 4 layers, D 256, 4 heads (2 kv), MLP 1024, vocab 32000; batch 32, prompt 64, 128 new
  qwen0.5b: Qwen2.5-0.5B shape (24 layers, D 896, 14 heads, 2 kv, MLP 4864, vocab 151936, tied);
    batch 8, prompt 64, 64 new

Times are wall-clock medians of ``--runs`` timed calls after one untimed call (the first rljax
call includes compilation: reported separately as "compile"). tokens/s = batch * new / time.
Prints one markdown table with the machine.

  python benchmarks/rollout.py                         # every preset
  python benchmarks/rollout.py --presets tiny --runs 5
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

from _machine import describe

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jax
import numpy as np


@dataclasses.dataclass(frozen=True, kw_only=True)
class Preset:
  """One benchmark row: model shape and rollout size."""

  name: str
  layers: int
  d_model: int
  heads: int
  kv_heads: int
  mlp: int
  vocab: int
  tie: bool
  batch: int
  prompt: int
  new: int


PRESETS = {
    # The experiments' cpu policy (experiments/_rl.py CPU_MODEL) with a GRPO step's rollout:
    # 16 prompts x 8 samples; attention over the cache, not the LM head, dominates.
    "small": Preset(name="small (2L, D64, V84)", layers=2, d_model=64, heads=4, kv_heads=4,
                    mlp=256, vocab=84, tie=True, batch=128, prompt=96, new=96),
    "tiny": Preset(name="tiny (4L, D256, V32k)", layers=4, d_model=256, heads=4, kv_heads=2,
                   mlp=1024, vocab=32000, tie=False, batch=32, prompt=64, new=128),
    "qwen0.5b": Preset(name="Qwen2.5-0.5B shape (24L, D896, V152k)", layers=24, d_model=896,
                       heads=14, kv_heads=2, mlp=4864, vocab=151936, tie=True, batch=8,
                       prompt=64, new=64),
}


def _parse():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
  p.add_argument("--runs", type=int, default=3, help="timed runs per side (median reported)")
  p.add_argument("--seed", type=int, default=0)
  return p.parse_args()


def _timed(fn, runs):
  """(first-call seconds, median seconds of ``runs`` further calls)."""
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  times = []
  for _ in range(runs):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return first, statistics.median(times)


def bench(preset: Preset, runs: int, seed: int) -> dict:
  import torch
  import transformers

  from rljax import rollout
  from rljax.models import hf

  torch.manual_seed(seed)
  config = transformers.Qwen2Config(
      vocab_size=preset.vocab, hidden_size=preset.d_model, intermediate_size=preset.mlp,
      num_hidden_layers=preset.layers, num_attention_heads=preset.heads,
      num_key_value_heads=preset.kv_heads, max_position_embeddings=4096,
      tie_word_embeddings=preset.tie, bos_token_id=None, eos_token_id=None, pad_token_id=0,
  )
  hf_model = transformers.Qwen2ForCausalLM(config).eval()
  with tempfile.TemporaryDirectory() as tmp:
    hf_model.save_pretrained(tmp)
    model = hf.from_pretrained(tmp)

  rs = np.random.RandomState(seed)
  prompt = rs.randint(1, preset.vocab, size=(preset.batch, preset.prompt)).astype(np.int32)
  mask = np.ones_like(prompt)
  key = [jax.random.key(seed)]

  def run_rljax():
    key[0], sub = jax.random.split(key[0])
    res = rollout.generate(model, prompt, mask, max_new_tokens=preset.new, rng=sub,
                           temperature=1.0)
    jax.block_until_ready(res.tokens)
    assert int(res.lengths.min()) == preset.new

  input_ids = torch.tensor(prompt, dtype=torch.long)
  attention_mask = torch.tensor(mask, dtype=torch.long)

  def run_hf():
    with torch.no_grad():
      out = hf_model.generate(
          input_ids=input_ids, attention_mask=attention_mask, do_sample=True, temperature=1.0,
          top_k=0, top_p=1.0, max_new_tokens=preset.new, min_new_tokens=preset.new,
          eos_token_id=None, pad_token_id=0,
      )
    assert out.shape[1] == preset.prompt + preset.new

  first_jax, t_jax = _timed(run_rljax, runs)
  print(f"  rljax: first call {first_jax:.1f} s, then {t_jax:.2f} s", flush=True)
  _, t_hf = _timed(run_hf, runs)
  print(f"  transformers: {t_hf:.2f} s", flush=True)
  n_tok = preset.batch * preset.new
  return dict(preset=preset, compile=first_jax - t_jax, jax_tps=n_tok / t_jax,
              hf_tps=n_tok / t_hf, t_jax=t_jax, t_hf=t_hf)


def main():
  args = _parse()
  import torch

  torch.set_num_threads(os.cpu_count())
  rows = []
  for name in args.presets:
    r = bench(PRESETS[name], args.runs, args.seed)
    rows.append(r)
    print(f"{name}: rljax {r['jax_tps']:.3g} tok/s ({r['t_jax']:.2f} s), transformers "
          f"{r['hf_tps']:.3g} tok/s ({r['t_hf']:.2f} s), compile {r['compile']:.1f} s", flush=True)
  print()
  import torch

  print(f"Machine: {describe()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); median of {args.runs} runs after one untimed call.")
  print()
  print("| model | batch x prompt + new | rljax tok/s | transformers tok/s | speed-up "
        "| rljax compile (s) |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    p = r["preset"]
    print(f"| {p.name} | {p.batch} x {p.prompt} + {p.new} | {r['jax_tps']:.3g} | "
          f"{r['hf_tps']:.3g} | {r['jax_tps'] / r['hf_tps']:.2f}x | {r['compile']:.1f} |")


if __name__ == "__main__":
  main()
