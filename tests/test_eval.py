"""Tests for rljax.eval.pass_at_k."""

import math
from fractions import Fraction

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from rljax.eval import pass_at_k


def _exact(n, c, k):
  if n - c < k:
    return 1.0
  return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def test_hand_values():
  assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=1e-15)  # k = 1 is c / n
  assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6, abs=1e-15)  # 1 - C(2,2)/C(4,2)
  assert pass_at_k(5, 0, 3) == 0.0
  assert pass_at_k(5, 3, 3) == 1.0  # n - c = 2 < k
  assert pass_at_k(1, 1, 1) == 1.0
  assert isinstance(pass_at_k(10, 3, 1), float)


def test_exact_at_n_1024():
  for c in (0, 1, 2, 17, 100, 512, 1000, 1023, 1024):
    for k in (1, 2, 8, 64, 128, 256, 1024):
      got = pass_at_k(1024, c, k)
      assert got == pytest.approx(_exact(1024, c, k), rel=1e-12, abs=1e-15), (c, k)


def test_vectorised_broadcasting():
  c = np.array([0, 1, 512, 1024])
  k = np.array([[1], [128]])
  out = pass_at_k(1024, c, k)
  assert out.shape == (2, 4) and out.dtype == np.float64
  expected = [[_exact(1024, ci, ki) for ci in c] for ki in (1, 128)]
  np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
  mixed = pass_at_k(np.array([8, 16]), np.array([2, 2]), 4)  # different n per problem
  np.testing.assert_allclose(mixed, [_exact(8, 2, 4), _exact(16, 2, 4)], rtol=1e-12)


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match="`c`"):
    pass_at_k(4, 5, 1)
  with pytest.raises(ValueError, match="`k`"):
    pass_at_k(4, 1, 5)
  with pytest.raises(ValueError, match="`n`"):
    pass_at_k(0, 0, 1)
  with pytest.raises(TypeError, match="`k`"):
    pass_at_k(4, 1, 1.5)


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(data=st.data(), n=st.integers(1, 300))
def test_matches_exact_and_is_monotone_in_k_and_c(data, n):
  c = data.draw(st.integers(0, n))
  k = data.draw(st.integers(1, n))
  got = pass_at_k(n, c, k)
  assert got == pytest.approx(_exact(n, c, k), rel=1e-11, abs=1e-14)
  assert 0.0 <= got <= 1.0
  if k < n:
    assert pass_at_k(n, c, k + 1) >= got
  if c < n:
    assert pass_at_k(n, c + 1, k) >= got
