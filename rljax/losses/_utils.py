"""Small private helpers shared by the loss modules: checks, safe division, dtype upcast."""

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp

# Log-ratios are clamped to +-MAX_LOG_RATIO before exp: exp(20) ~ 4.9e8 is finite in fp32 and
# far beyond any clip range, so the clamp never changes a loss that clipping keeps bounded.
MAX_LOG_RATIO = 20.0


def compute_dtype(*xs: jax.Array) -> jnp.dtype:
  """The dtype losses compute in: the inputs' promoted float type, at least float32."""
  return jnp.promote_types(jnp.result_type(*xs), jnp.float32)


def check_float(fn: str, name: str, x: jax.Array, rank: int | Sequence[int] | None = None):
  """Asserts that ``x`` is a floating array (of the given rank), naming the argument."""
  chex.assert_type(x, float, custom_message=f"{fn}: `{name}` must be a floating-point array")
  if rank is not None:
    chex.assert_rank(x, rank, custom_message=f"{fn}: `{name}` has the wrong rank")


def check_choice(fn: str, name: str, value: str, valid: Sequence[str]):
  """Raises a ValueError naming the argument and listing the valid values."""
  if value not in valid:
    choices = ", ".join(repr(v) for v in valid)
    raise ValueError(f"{fn}: `{name}` must be one of {choices}; got {value!r}")


def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
  """``num / den`` where ``den != 0``, else 0; the zero branch has finite gradients too."""
  nonzero = den != 0
  return jnp.where(nonzero, num / jnp.where(nonzero, den, 1), 0)


def as_mask(fn: str, mask: jax.Array, like: jax.Array, dtype: jnp.dtype) -> jax.Array:
  """Checks ``mask`` has the shape of ``like`` and returns it as 0/1 (or weights) in ``dtype``."""
  chex.assert_equal_shape([mask, like], custom_message=f"{fn}: `mask` must match the loss shape")
  return mask.astype(dtype)
