"""Hugging Face checkpoint interop for the LLaMA, Qwen2 and Qwen3 families.

``from_pretrained(path)`` reads a local checkpoint folder (``config.json`` plus one
``model.safetensors`` or shards with ``model.safetensors.index.json``) into a
:class:`~rljax.models.Transformer`, streaming tensor by tensor: parameters are never
randomly initialised (the model skeleton is built with ``nnx.eval_shape``) and each tensor is
converted as it is read. ``save_pretrained(model, path)`` writes a folder that
``transformers.AutoModelForCausalLM.from_pretrained`` loads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors import safe_open

from rljax.models._attention import RopeScaling
from rljax.models._transformer import Transformer, TransformerConfig

SUPPORTED_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}
_ARCH_OF_TYPE = {v: k for k, v in SUPPORTED_ARCHITECTURES.items()}
_SINGLE_FILE = "model.safetensors"
_INDEX_FILE = "model.safetensors.index.json"
# Buffers some checkpoints carry that the model recomputes.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def config_from_hf(
    hf_config: Mapping[str, Any], *, dtype: Any = jnp.float32, param_dtype: Any = None
) -> TransformerConfig:
  """Translates a Hugging Face ``config.json`` dict (LLaMA / Qwen2 / Qwen3) to a config.

  Handles both RoPE layouts: transformers 5.x ``rope_parameters`` (holding ``rope_theta``)
  and 4.x top-level ``rope_theta`` plus ``rope_scaling``; rope types "default", "linear",
  "llama3".

  Args:
    hf_config: the parsed ``config.json``.
    dtype: compute dtype of the rljax model.
    param_dtype: parameter dtype (default: ``dtype``).

  Returns:
    The matching :class:`TransformerConfig`.

  Raises:
    ValueError: naming the unsupported architecture, activation, rope type or feature.
  """
  c = dict(hf_config)
  model_type = c.get("model_type")
  archs = c.get("architectures") or []
  unsupported = [a for a in archs if a not in SUPPORTED_ARCHITECTURES]
  if unsupported or model_type not in _ARCH_OF_TYPE:
    raise ValueError(
        f"unsupported architecture {unsupported or archs} (model_type={model_type!r}); "
        f"supported: {sorted(SUPPORTED_ARCHITECTURES)}"
    )
  act = c.get("hidden_act", "silu")
  if act != "silu":
    raise ValueError(f"unsupported hidden_act {act!r} (only 'silu' / SwiGLU)")
  layer_types = c.get("layer_types") or []
  if c.get("use_sliding_window") or any(t != "full_attention" for t in layer_types):
    raise ValueError("sliding-window attention (use_sliding_window / layer_types) is not supported")

  rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
  if any(isinstance(v, Mapping) for v in rope.values()):
    raise ValueError(f"per-layer-type rope_parameters are not supported: {sorted(rope)}")
  theta = rope.get("rope_theta", c.get("rope_theta", 10_000.0))
  rope_type = rope.get("rope_type", rope.get("type", "default"))
  if rope.get("partial_rotary_factor", c.get("partial_rotary_factor", 1.0)) != 1.0:
    raise ValueError("partial_rotary_factor != 1 is not supported")
  max_pos = int(c.get("max_position_embeddings") or 4096)
  if rope_type == "default":
    scaling = None
  elif rope_type == "linear":
    scaling = RopeScaling(kind="linear", factor=float(rope["factor"]))
  elif rope_type == "llama3":
    scaling = RopeScaling(
        kind="llama3", factor=float(rope["factor"]),
        low_freq_factor=float(rope["low_freq_factor"]),
        high_freq_factor=float(rope["high_freq_factor"]),
        original_max_position_embeddings=int(
            rope.get("original_max_position_embeddings", max_pos)
        ),
    )
  else:
    raise ValueError(f"unsupported rope_type {rope_type!r} (supported: default, linear, llama3)")

  heads = int(c["num_attention_heads"])
  attention_bias = bool(c.get("attention_bias", False))
  if model_type == "qwen2":
    qkv_bias, out_bias = True, False
  else:
    qkv_bias, out_bias = attention_bias, attention_bias
  if model_type != "llama" and c.get("mlp_bias", False):
    raise ValueError(f"mlp_bias is not supported for {model_type}")
  return TransformerConfig(
      vocab_size=int(c["vocab_size"]),
      d_model=int(c["hidden_size"]),
      num_layers=int(c["num_hidden_layers"]),
      num_heads=heads,
      num_kv_heads=int(c.get("num_key_value_heads") or heads),
      head_dim=int(c["head_dim"]) if c.get("head_dim") else None,
      mlp_dim=int(c["intermediate_size"]),
      mlp_bias=bool(c.get("mlp_bias", False)),
      norm="rmsnorm",
      norm_eps=float(c.get("rms_norm_eps", 1e-6)),
      mixers="attention",
      residual="add",
      tie_embeddings=bool(c.get("tie_word_embeddings", False)),
      attention_bias=qkv_bias,
      attention_out_bias=out_bias,
      qk_norm=model_type == "qwen3",
      rope_theta=float(theta),
      rope_scaling=scaling,
      max_position_embeddings=max_pos,
      init_std=float(c.get("initializer_range", 0.02)),
      dtype=dtype,
      param_dtype=param_dtype or dtype,
  )


def _hf_name(path: tuple[Any, ...]) -> tuple[str, bool]:
  """Maps an rljax parameter path to (Hugging Face tensor name, transpose?)."""
  p = tuple(str(k) for k in path)
  if p == ("embed", "embedding"):
    return "model.embed_tokens.weight", False
  if p == ("final_norm", "scale"):
    return "model.norm.weight", False
  if p == ("lm_head", "kernel"):
    return "lm_head.weight", True
  if len(p) >= 4 and p[0] == "layers":
    i, rest = p[1], p[2:]
    prefix = f"model.layers.{i}."
    if rest == ("mixer_norm", "scale"):
      return prefix + "input_layernorm.weight", False
    if rest == ("mlp_norm", "scale"):
      return prefix + "post_attention_layernorm.weight", False
    if len(rest) == 3 and rest[0] in ("mixer", "mlp"):
      sub = "self_attn" if rest[0] == "mixer" else "mlp"
      module, leaf = rest[1], rest[2]
      if leaf == "kernel":
        return f"{prefix}{sub}.{module}.weight", True
      if leaf in ("bias", "scale"):
        return f"{prefix}{sub}.{module}.{'bias' if leaf == 'bias' else 'weight'}", False
  raise ValueError(f"parameter {'/'.join(p)} has no Hugging Face equivalent")


def _flat(tree: Any) -> dict[tuple[Any, ...], Any]:
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    out[tuple(getattr(k, "key", getattr(k, "idx", k)) for k in path)] = leaf
  return out


def _set(tree: dict, path: tuple[Any, ...], value: Any) -> None:
  for k in path[:-1]:
    tree = tree[k]
  tree[path[-1]] = value


def _shards(path: str) -> dict[str, list[str]]:
  """{shard file: [tensor names]} of a checkpoint folder."""
  index = os.path.join(path, _INDEX_FILE)
  if os.path.exists(index):
    with open(index) as f:
      weight_map = json.load(f)["weight_map"]
    shards: dict[str, list[str]] = {}
    for name, file in weight_map.items():
      shards.setdefault(file, []).append(name)
    return shards
  single = os.path.join(path, _SINGLE_FILE)
  if os.path.exists(single):
    with safe_open(single, framework="flax") as f:
      return {_SINGLE_FILE: list(f.keys())}
  raise FileNotFoundError(f"no {_SINGLE_FILE} or {_INDEX_FILE} in {path}")


def from_pretrained(
    path: str | os.PathLike, *, dtype: Any = jnp.float32, param_dtype: Any = None
) -> Transformer:
  """Loads a local Hugging Face LLaMA / Qwen2 / Qwen3 checkpoint folder into a Transformer.

  Tensors are streamed one at a time from the safetensors file(s) (``safe_open``), cast to
  ``param_dtype`` and, for linear layers, transposed from torch's ``[out, in]`` to ``[in, out]``.

  Args:
    path: folder with ``config.json`` and ``model.safetensors`` (or shards + index json).
    dtype: compute dtype of the model.
    param_dtype: parameter dtype (default: ``dtype``).

  Returns:
    The loaded :class:`Transformer`.

  Raises:
    ValueError: unsupported architecture / feature, tensor shape mismatch, or unexpected tensors.
    KeyError: tensors the model needs that the checkpoint lacks (all of them named).
  """
  path = os.fspath(path)
  with open(os.path.join(path, "config.json")) as f:
    hf_config = json.load(f)
  cfg = config_from_hf(hf_config, dtype=dtype, param_dtype=param_dtype)
  abstract = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
  graphdef, abstract_state = nnx.split(abstract)
  params = nnx.to_pure_dict(abstract_state)
  wanted = {}
  for p, leaf in _flat(params).items():
    name, transpose = _hf_name(p)
    wanted[name] = (p, transpose, leaf)

  shards = _shards(path)
  available = {n for names in shards.values() for n in names}
  missing = sorted(set(wanted) - available)
  if missing:
    raise KeyError(f"checkpoint {path} lacks tensors: {missing}")
  unexpected = sorted(
      n for n in available - set(wanted)
      if not n.endswith(_IGNORED_SUFFIXES) and not (cfg.tie_embeddings and n == "lm_head.weight")
  )
  if unexpected:
    raise ValueError(f"checkpoint {path} has tensors the rljax model does not use: {unexpected}")

  for file, names in shards.items():
    with safe_open(os.path.join(path, file), framework="flax") as f:
      for name in names:
        if name not in wanted:
          continue
        p, transpose, leaf = wanted[name]
        x = f.get_tensor(name)
        if transpose:
          x = x.T
        if tuple(x.shape) != tuple(leaf.shape):
          raise ValueError(
              f"tensor {name} has shape {tuple(x.shape)}, expected {tuple(leaf.shape)}"
          )
        _set(params, p, jnp.asarray(x, dtype=leaf.dtype))
        del x
  nnx.replace_by_pure_dict(abstract_state, params)
  return nnx.merge(graphdef, abstract_state)


def _hf_model_type(cfg: TransformerConfig) -> str:
  problems = []
  if cfg.norm != "rmsnorm":
    problems.append(f"norm={cfg.norm!r}")
  if any(m != "attention" for m in cfg.mixers):
    problems.append(f"mixers={cfg.mixers!r}")
  if cfg.residual != "add":
    problems.append(f"residual={cfg.residual!r}")
  if cfg.embedding_scale:
    problems.append("embedding_scale=True")
  if problems:
    raise ValueError(f"no Hugging Face architecture matches {', '.join(problems)}")
  if cfg.qk_norm:
    if cfg.attention_bias != cfg.attention_out_bias or cfg.mlp_bias:
      raise ValueError("Qwen3 (qk_norm) needs attention_bias == attention_out_bias, no mlp_bias")
    return "qwen3"
  if cfg.attention_bias and not cfg.attention_out_bias:
    if cfg.mlp_bias:
      raise ValueError("Qwen2 (q/k/v bias, no o bias) has no mlp_bias")
    return "qwen2"
  if cfg.attention_bias != cfg.attention_out_bias:
    raise ValueError("attention_out_bias without attention_bias matches no HF architecture")
  return "llama"


def hf_config_dict(cfg: TransformerConfig) -> dict[str, Any]:
  """The Hugging Face config kwargs (``model_type`` included) of an HF-compatible config."""
  model_type = _hf_model_type(cfg)
  if cfg.rope_scaling is None:
    rope = {"rope_type": "default"}
  elif cfg.rope_scaling.kind == "linear":
    rope = {"rope_type": "linear", "factor": cfg.rope_scaling.factor}
  else:
    s = cfg.rope_scaling
    rope = {
        "rope_type": "llama3", "factor": s.factor, "low_freq_factor": s.low_freq_factor,
        "high_freq_factor": s.high_freq_factor,
        "original_max_position_embeddings": s.original_max_position_embeddings,
    }
  d = dict(
      model_type=model_type,
      architectures=[_ARCH_OF_TYPE[model_type]],
      vocab_size=cfg.vocab_size,
      hidden_size=cfg.d_model,
      intermediate_size=cfg.mlp_dim,
      num_hidden_layers=cfg.num_layers,
      num_attention_heads=cfg.num_heads,
      num_key_value_heads=cfg.num_kv_heads,
      head_dim=cfg.head_dim,
      hidden_act="silu",
      max_position_embeddings=cfg.max_position_embeddings,
      rms_norm_eps=cfg.norm_eps,
      tie_word_embeddings=cfg.tie_embeddings,
      rope_theta=cfg.rope_theta,
      rope_scaling=None if cfg.rope_scaling is None else rope,
      rope_parameters={**rope, "rope_theta": cfg.rope_theta},
      initializer_range=cfg.init_std,
      bos_token_id=None,
      eos_token_id=None,
  )
  if model_type == "llama":
    d.update(attention_bias=cfg.attention_bias, mlp_bias=cfg.mlp_bias)
  elif model_type == "qwen3":
    d.update(attention_bias=cfg.attention_bias, use_sliding_window=False)
  else:
    d.update(use_sliding_window=False)
  return d


def _hf_tensors(model: Transformer, dtype: Any) -> Iterator[tuple[str, jax.Array]]:
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  for p, x in _flat(params).items():
    name, transpose = _hf_name(p)
    x = jnp.asarray(x, dtype or x.dtype)
    yield name, (x.T if transpose else x)


def save_pretrained(
    model: Transformer,
    path: str | os.PathLike,
    *,
    dtype: Any = None,
    max_shard_bytes: int | None = None,
    **hf_overrides: Any,
) -> None:
  """Writes ``config.json`` + safetensors that ``transformers`` loads (LLaMA / Qwen2 / Qwen3).

  The family is chosen from the config: q/k norm -> Qwen3; q/k/v bias without o bias ->
  Qwen2; otherwise LLaMA. DyT, delta-rule mixers, Deep Delta residuals and the embedding scale
  have no Hugging Face equivalent and raise.

  Args:
    model: the model to save.
    path: output folder (created).
    dtype: tensor dtype on disk (default: the parameter dtype).
    max_shard_bytes: split into ``model-0000i-of-0000n.safetensors`` shards plus an index json
      when given; one ``model.safetensors`` otherwise.
    **hf_overrides: extra / overriding Hugging Face config fields (e.g. ``eos_token_id``).
  """
  import safetensors.flax
  import transformers

  path = os.fspath(path)
  os.makedirs(path, exist_ok=True)
  kwargs = {**hf_config_dict(model.config), **hf_overrides}
  model_type = kwargs.pop("model_type")
  hf_cfg = transformers.AutoConfig.for_model(model_type, **kwargs)
  hf_cfg.save_pretrained(path)

  shards: list[dict[str, np.ndarray]] = [{}]
  size = 0
  for name, x in _hf_tensors(model, dtype):
    nbytes = x.size * x.dtype.itemsize
    if max_shard_bytes is not None and shards[-1] and size + nbytes > max_shard_bytes:
      shards.append({})
      size = 0
    shards[-1][name] = x
    size += nbytes
  metadata = {"format": "pt"}
  if len(shards) == 1:
    safetensors.flax.save_file(shards[0], os.path.join(path, _SINGLE_FILE), metadata=metadata)
    return
  weight_map = {}
  total = 0
  for i, shard in enumerate(shards):
    file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    safetensors.flax.save_file(shard, os.path.join(path, file), metadata=metadata)
    for name, x in shard.items():
      weight_map[name] = file
      total += x.size * x.dtype.itemsize
  with open(os.path.join(path, _INDEX_FILE), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
