"""rljax: reinforcement learning for language models in JAX.

Import the parts you need: ``rljax.losses`` (pure loss functions), ``rljax.kernels``
(fused log-prob and entropy), ``rljax.models`` (Flax NNX models and Hugging Face
checkpoints), ``rljax.tasks`` (verifiable tasks), ``rljax.rollout``, ``rljax.train`` and
``rljax.eval``. Subpackages are not imported here so that ``import rljax`` stays cheap.
"""

__version__ = "0.1.0"
