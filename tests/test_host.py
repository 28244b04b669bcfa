"""rljax.reuse_host_memory: XLA:CPU's temporaries stop being page-faulted back every call."""

import ctypes
import json
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import _host

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")

# A child process: optionally reuse_host_memory() before JAX starts, then call a jitted program
# whose temporary buffer is 128 MiB (above glibc's 32 MiB mmap ceiling) 16 times, and report the
# minor page faults of each call after the first, the compiled temp size and a checksum.
_CHILD = r"""
import json, resource, sys
import rljax
applied = rljax.reuse_host_memory() if sys.argv[1] == "on" else None
import jax, jax.numpy as jnp

def f(x):
  s = jnp.exp(x @ x.T / 64.0)  # [4096, 4096] fp32 = 64 MiB, and its transpose below
  return jnp.sum(s * s.T, axis=0)

x = jax.random.normal(jax.random.key(0), (4096, 64))
c = jax.jit(f).lower(x).compile()
temp = c.memory_analysis().temp_size_in_bytes
y = c(x).block_until_ready()
faults = []
for _ in range(16):
  r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  y = c(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(json.dumps({"applied": applied, "temp": int(temp), "faults": faults,
                  "sum": float(jnp.sum(y))}))
"""


def _child(mode: str) -> dict:
  """``mode``: "off", "on" (the call), or "env" (no call; the process starts with ``ENV``)."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
  for k in _host.ENV:
    env.pop(k, None)
  if mode == "env":
    env.update(_host.ENV)
  out = subprocess.run([sys.executable, "-c", _CHILD, mode], env=env, capture_output=True,
                       text=True, timeout=300, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt settings are glibc's")
def test_temporaries_are_reused_instead_of_page_faulted_with_the_same_result():
  off, on, env = _child("off"), _child("on"), _child("env")
  assert on["applied"] is True
  assert off["temp"] == on["temp"] == env["temp"] > 64 * 2**20
  pages = off["temp"] // 4096
  # Without it every call faults in (at least) the pages it writes of a fresh mmap. With the
  # call, or with the environment variables it documents, the heap keeps them: most calls
  # fault nothing (the heap still grows by a temp's size now and then in the first calls, seen
  # in up to 6 of 15).
  assert min(off["faults"]) > pages // 4, off
  assert np.median(on["faults"]) < pages // 50, on
  assert np.median(env["faults"]) < pages // 50, env
  assert on["sum"] == off["sum"] == env["sum"]


def test_too_late_changes_nothing_and_says_so():
  jnp.ones(2).block_until_ready()  # this process's backend is up
  with pytest.warns(RuntimeWarning, match="before the first JAX computation"):
    assert rljax.reuse_host_memory() is False
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert rljax.reuse_host_memory(warn=False) is False
  assert jax.devices()  # and JAX still works


def test_without_mallopt_it_is_a_no_op(monkeypatch):
  class NoMallopt:  # a C library without mallopt (macOS, Windows)
    pass

  monkeypatch.setattr(_host, "_backend_started", lambda: False)
  monkeypatch.setattr(_host.ctypes, "CDLL", lambda name: NoMallopt())
  assert rljax.reuse_host_memory() is False

