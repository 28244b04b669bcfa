"""Hugging Face parity: tiny random LLaMA / Qwen2 / Qwen3 saved by transformers, loaded by rljax."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flax import nnx  # noqa: E402

from rljax.models import Transformer, TransformerConfig, hf  # noqa: E402

TINY = dict(
    vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    rms_norm_eps=1e-5,
)

CASES = {
    "llama_untied": ("llama", dict(tie_word_embeddings=False, rope_theta=10_000.0)),
    "llama_tied_bias_llama3rope": (
        "llama",
        dict(
            tie_word_embeddings=True, attention_bias=True, rope_theta=500_000.0,
            rope_scaling=dict(
                rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                original_max_position_embeddings=64,
            ),
        ),
    ),
    "qwen2_tied": ("qwen2", dict(tie_word_embeddings=True, rope_theta=1_000_000.0)),
    "qwen3_untied_headdim": ("qwen3", dict(tie_word_embeddings=False, head_dim=32)),
}

TOKENS = np.array([[3, 14, 15, 92, 65, 35, 89, 79], [0, 0, 0, 26, 53, 58, 97 - 1, 32]])
MASK = np.array([[1] * 8, [0, 0, 0, 1, 1, 1, 1, 1]])


def _torch_model(model_type, extra):
  torch.manual_seed(0)
  cfg = transformers.AutoConfig.for_model(model_type, **TINY, **extra)
  model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
  with torch.no_grad():  # random norm weights and biases, so a mix-up cannot hide
    for name, p in model.named_parameters():
      if name.endswith("norm.weight"):
        p.copy_(1.0 + 0.1 * torch.randn_like(p))
      elif name.endswith("bias"):
        p.copy_(0.1 * torch.randn_like(p))
  return model


def _torch_logits(model, tokens=TOKENS, mask=MASK):
  pos = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
  with torch.no_grad():
    out = model(
        input_ids=torch.tensor(tokens), attention_mask=torch.tensor(mask),
        position_ids=torch.tensor(pos),
    )
  return out.logits.float().numpy()


def _rljax_logits(model):
  graphdef, state = nnx.split(model)
  fwd = jax.jit(lambda s, t, m: nnx.merge(graphdef, s)(t, attention_mask=m))
  return np.asarray(fwd(state, jnp.asarray(TOKENS), jnp.asarray(MASK)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_matches_transformers_and_round_trips(case, tmp_path):
  model_type, extra = CASES[case]
  torch_model = _torch_model(model_type, extra)
  src = tmp_path / "src"
  torch_model.save_pretrained(src, max_shard_size="60KB" if case == "llama_untied" else "1GB")
  if case == "llama_untied":
    assert os.path.exists(src / "model.safetensors.index.json")  # sharded
  expected = _torch_logits(torch_model)
  real = MASK.astype(bool)

  model = hf.from_pretrained(src, dtype=jnp.float32)
  cfg = model.config
  assert cfg.tie_embeddings == extra["tie_word_embeddings"]
  assert cfg.qk_norm == (model_type == "qwen3")
  assert cfg.attention_bias == (model_type == "qwen2" or bool(extra.get("attention_bias")))
  got = _rljax_logits(model)
  np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=0)

  # rljax -> save_pretrained -> transformers gives the same logits
  dst = tmp_path / "dst"
  sharded = case == "qwen2_tied"
  hf.save_pretrained(model, dst, max_shard_bytes=30_000 if sharded else None)
  if sharded:
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    # and back into rljax: identical parameters
    reloaded_rljax = hf.from_pretrained(dst)
    jax.tree.map(
        np.testing.assert_array_equal,
        nnx.to_pure_dict(nnx.state(model, nnx.Param)),
        nnx.to_pure_dict(nnx.state(reloaded_rljax, nnx.Param)),
    )
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(dst, dtype=torch.float32).eval()
  assert type(reloaded).__name__ == type(torch_model).__name__
  np.testing.assert_allclose(_torch_logits(reloaded)[real], got[real], atol=1e-4, rtol=0)


def test_bf16_load(tmp_path):
  torch_model = _torch_model("qwen3", dict(tie_word_embeddings=True))
  torch_model.to(torch.bfloat16).save_pretrained(tmp_path)
  model = hf.from_pretrained(tmp_path, dtype=jnp.bfloat16)
  q = model.layers[0].mixer.q_proj.kernel[...]
  assert q.dtype == jnp.bfloat16 and model.config.dtype == jnp.bfloat16
  expected = torch_model.model.layers[0].self_attn.q_proj.weight.detach().float().numpy().T
  np.testing.assert_array_equal(np.asarray(q, np.float32), expected)  # bf16 -> bf16 is exact


def test_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match="MistralForCausalLM"):
    hf.config_from_hf({"model_type": "mistral", "architectures": ["MistralForCausalLM"]})
  base = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], **TINY}
  with pytest.raises(ValueError, match="yarn"):
    hf.config_from_hf({**base, "rope_scaling": {"rope_type": "yarn", "factor": 2.0}})
  with pytest.raises(ValueError, match="gelu"):
    hf.config_from_hf({**base, "hidden_act": "gelu"})
  # 4.x layout: top-level rope_theta
  assert hf.config_from_hf({**base, "rope_theta": 123.0}).rope_theta == 123.0
  assert hf.config_from_hf(
      {**base, "rope_parameters": {"rope_type": "default", "rope_theta": 7.0}}
  ).rope_theta == 7.0

  torch_model = _torch_model("llama", dict(tie_word_embeddings=False))
  torch_model.save_pretrained(tmp_path)
  from safetensors.torch import load_file, save_file

  tensors = load_file(tmp_path / "model.safetensors")
  del tensors["model.layers.1.mlp.up_proj.weight"]
  save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
  with pytest.raises(KeyError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
    hf.from_pretrained(tmp_path)

  dyt = Transformer(
      TransformerConfig(vocab_size=8, d_model=8, num_layers=1, num_heads=2, mlp_dim=8, norm="dyt"),
      rngs=nnx.Rngs(0),
  )
  with pytest.raises(ValueError, match="norm='dyt'"):
    hf.save_pretrained(dyt, tmp_path / "dyt")
