"""The one-line machine description every benchmark prints beside its table."""

import os
import platform


def describe() -> str:
  """``"cpu (cpu), 2 CPU cores (AMD EPYC ...), jax 0.10.2"``; jax is imported here, late, so
  that a benchmark can set XLA flags before the first import."""
  import jax

  dev = jax.devices()[0]
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
  return (f"{dev.platform} ({dev.device_kind}), {os.cpu_count()} CPU cores ({cpu}), "
          f"jax {jax.__version__}{load}")
