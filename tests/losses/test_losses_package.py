"""The public surface of rljax.losses: names and signatures are a contract."""

import ast
import inspect
import pathlib

import rljax.losses as losses

# The contract of issue 2: positional parameters, then keyword-only ones with their defaults.
_CONTRACT = {
    "group_advantages": ("rewards", "*", "scale='std'", "baseline='mean'", "eps=1e-06"),
    "gae": ("rewards", "values", "mask", "*", "gamma=1.0", "lam=0.95"),
    "clipped_surrogate": (
        "logp", "old_logp", "advantages", "*", "eps_low=0.2", "eps_high=0.2", "dual_clip=None"
    ),
    "aggregate": ("loss", "mask", "mode", "*", "max_len=None"),
    "kl_penalty": ("logp", "ref_logp", "kind='k3'"),
    "dpo_loss": (
        "chosen_logp", "rejected_logp", "ref_chosen_logp", "ref_rejected_logp", "*",
        "beta=0.1", "kind='sigmoid'", "label_smoothing=0.0",
    ),
    "token_entropy": ("logits", "*", "temperature=1.0"),
    "top_entropy_mask": ("entropy", "mask", "*", "rho=0.2"),
    "entropy_advantage": ("advantages", "entropy", "*", "alpha=0.4", "kappa=2.0"),
    "overlong_penalty": ("lengths", "*", "max_len", "cache_len"),
    "dynamic_sampling_mask": ("rewards",),
    "clipped_value_loss": ("values", "old_values", "returns", "*", "eps"),
    "whiten": ("x", "mask", "*", "shift_mean=True", "eps=1e-08"),
}  # fmt: skip


def _params(fn):
  out = []
  for p in inspect.signature(fn).parameters.values():
    if p.kind is p.KEYWORD_ONLY and "*" not in out:
      out.append("*")
    out.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
  return tuple(out)


def test_contract_names_and_signatures():
  for name, params in _CONTRACT.items():
    assert name in losses.__all__, name
    assert _params(getattr(losses, name)) == params, name
  for name in ("clip_fraction", "clip_fractions", "dpo_reward_margin", "dpo_reward_accuracy"):
    assert name in losses.__all__ and callable(getattr(losses, name))
  assert sorted(losses.__all__) == sorted(set(losses.__all__))
  for name in losses.__all__:
    assert getattr(losses, name).__doc__, f"{name} has no docstring"


def test_losses_import_nothing_else_from_rljax():
  for path in pathlib.Path(losses.__file__).parent.glob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module:
        assert not node.module.startswith("rljax") or node.module.startswith("rljax.losses"), (
            f"{path.name} imports {node.module}"
        )
      if isinstance(node, ast.Import):
        for alias in node.names:
          assert not alias.name.startswith("rljax"), f"{path.name} imports {alias.name}"
