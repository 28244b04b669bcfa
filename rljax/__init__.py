"""rljax: reinforcement learning for language models in JAX.

Import the parts you need: ``rljax.losses`` (pure loss functions), ``rljax.kernels``
(fused log-prob and entropy), ``rljax.models`` (Flax NNX models and Hugging Face
checkpoints), ``rljax.tasks`` (verifiable tasks), ``rljax.rollout``, ``rljax.train`` and
``rljax.eval``. Subpackages are not imported here so that ``import rljax`` stays cheap.

``rljax.reuse_host_memory()``: call it before JAX's first computation to keep XLA:CPU from
page-faulting its temporary buffers back every step (see :mod:`rljax._host`).
"""

from rljax._host import reuse_host_memory

__all__ = ["reuse_host_memory"]
__version__ = "0.1.0"
