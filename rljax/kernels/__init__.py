"""Fused token log-prob and entropy over large vocabularies (reference, chunked XLA, Pallas).

``token_logprobs_and_entropy`` works from materialised logits; ``fused_linear_logprobs_and_entropy``
fuses the unembedding matmul and never materialises ``[N, V]`` logits.
"""

from rljax.kernels._logprob_entropy import (
    BlockSizes,
    default_block_sizes,
    fused_linear_logprobs_and_entropy,
    fused_linear_logprobs_and_entropy_reference,
    logprobs_and_entropy_reference,
    token_logprobs_and_entropy,
)

__all__ = [
    "BlockSizes",
    "default_block_sizes",
    "fused_linear_logprobs_and_entropy",
    "fused_linear_logprobs_and_entropy_reference",
    "logprobs_and_entropy_reference",
    "token_logprobs_and_entropy",
]
