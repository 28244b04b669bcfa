"""Host-memory settings for XLA:CPU: keep freed memory instead of page-faulting it back each step.

Each execution of a compiled XLA:CPU program allocates one temporary buffer of the program's
``temp_size`` and frees it at the end. glibc's malloc serves a block over 32 MiB with a fresh
``mmap`` and gives it back with ``munmap``, so the next step touches every page of it anew:
a page fault and a zeroed page per 4 KiB. For an SFT step of the sft_vs_rl study's 2 x 64
model at 32 x 160 tokens the buffer is 186 MB, about 30,000 page faults per step, and the
kernel's share of the step's CPU time was 28% (``perf``, 2-core AMD EPYC VM, jax 0.10.2).
:func:`reuse_host_memory` tells malloc to serve such blocks from its heap and keep them.
"""

from __future__ import annotations

import ctypes
import sys
import warnings

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_KEEP_BYTES = 2**31 - 1  # mallopt takes a C int: the largest trim threshold it can express

# The same settings for a process started from a shell (glibc reads them at start-up).
ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(_KEEP_BYTES),
       "MALLOC_ARENA_MAX": "1"}


def _backend_started() -> bool:
  """Whether JAX has created a backend (and with it XLA's worker threads) in this process."""
  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge
  except ImportError:  # a JAX without this module: assume the worst
    return True
  probe = getattr(xla_bridge, "backends_are_initialized", None)
  return True if probe is None else bool(probe())


def reuse_host_memory(*, warn: bool = True) -> bool:
  r"""Let glibc's malloc keep freed memory, so XLA:CPU reuses its temporaries step after step.

  Sets three ``mallopt`` parameters of the process:
  ``M_MMAP_MAX = 0`` (large blocks come from the heap, not from a fresh ``mmap``),
  ``M_TRIM_THRESHOLD = 2**31 - 1`` (freed heap memory stays in the process) and
  ``M_ARENA_MAX = 1`` (XLA's worker threads allocate from the main heap too: a thread's own
  arena cannot hold a block over 64 MiB and would ``mmap`` it anyway). The same as starting
  Python with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_ARENA_MAX=1``
  (:data:`ENV`). Results do not change (the same buffers, from another place); the resident
  memory stays at its peak instead of shrinking between steps.

  Measured on the 2-core AMD EPYC VM (jax 0.10.2, 2026-12-02, runs with and without it
  interleaved): sft_vs_rl's base pre-training step (2 x 64 model, 32 x 160 tokens) 213-256 ms
  -> 144-186 ms median over five runs each, page faults 5.7 M -> 0.22 M per 180 steps, the
  losses equal bit for bit; swe_rl's 1500-step SFT 814 -> 579 s and the whole study 27.6 ->
  25.5 min with the same results.json. GRPO steps (rollout-bound) did not change (an 8-step
  swe_rl arm after 300 SFT steps in one process: 54.7 / 54.8 s without, 55.2 / 54.2 s with), and
  a compile is slower (3.1-3.4 -> 3.5-4.4 s for that SFT step: LLVM's threads share the one
  arena). ``rljax`` commands and the experiment scripts call it at start-up; call it in your
  own script before JAX's first computation.

  Args:
    warn: warn when called too late (JAX's backend already started). The library's own entry
      points pass False: the CLI and the experiment scripts may also be run from a test process
      where JAX is already up.

  Returns:
    True when the settings were applied; False, changing nothing, where the C library has no
    ``mallopt`` (not glibc: macOS, musl) or when JAX's backend has already started (its worker
    threads keep their own arenas).

  Reference: glibc manual, "Malloc Tunable Parameters"; mallopt(3).
  """
  if _backend_started():
    if warn:
      warnings.warn("reuse_host_memory: JAX's backend has already started, so its threads keep "
                    "their malloc arenas; call it before the first JAX computation (nothing "
                    "changed)", RuntimeWarning, stacklevel=2)
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter is linked against
  except (OSError, AttributeError, TypeError):
    return False
  mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
  settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_BYTES), (_M_ARENA_MAX, 1))
  return all(mallopt(param, value) == 1 for param, value in settings)
