"""How the encoder's attention is traced to ONNX (export time only: needs torch + sam2).

Two trace-time rewrites of Hiera's attention. Each computes the same products in the same order
as SAM2's own modules (the exported encoder's outputs were bit-identical with and without them),
but the graph they trace runs faster or in less memory under ONNX Runtime. The parity tests
compare the export against SAM2's unpatched modules, so a rewrite that changed a number fails.

torch and sam2 are imported inside the functions, so importing this module never loads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

#: Query rows per attention block in the exported encoder (see :func:`query_chunked_attention`).
ATTENTION_QUERY_ROWS = 1024


@contextlib.contextmanager
def encoder_attention_for_onnx(torch: Any) -> Iterator[None]:
    """Both rewrites, for the duration of the encoder's trace."""
    with query_chunked_attention(torch), hiera_attention_as_three_projections(torch):
        yield


@contextlib.contextmanager
def query_chunked_attention(torch: Any, rows: int = ATTENTION_QUERY_ROWS) -> Iterator[None]:
    """Trace ``scaled_dot_product_attention`` over at most ``rows`` queries at a time.

    Hiera's global-attention blocks attend over all 64x64 = 4,096 tokens: traced whole, ONNX
    Runtime holds the 4,096 x 4,096 score matrix per head (and its softmax) at once, which was
    the encoder's peak memory (~270 MB above the chunked graph's; docs/BENCHMARKS.md, "Memory").
    Softmax is per query row, so attention over a slice of the queries against all keys is
    exactly the matching rows of the full result: the chunked graph computes the same numbers
    (measured bit-identical outputs) and was not slower.
    """
    functional = torch.nn.functional
    original = functional.scaled_dot_product_attention

    def chunked(q: Any, k: Any, v: Any, *args: Any, **kwargs: Any) -> Any:
        if q.shape[-2] <= rows or args or kwargs.get("attn_mask") is not None:
            return original(q, k, v, *args, **kwargs)
        parts = [original(part, k, v, **kwargs) for part in q.split(rows, dim=-2)]
        return torch.cat(parts, dim=-2)

    functional.scaled_dot_product_attention = chunked
    try:
        yield
    finally:
        functional.scaled_dot_product_attention = original


@contextlib.contextmanager
def hiera_attention_as_three_projections(torch: Any) -> Iterator[None]:
    """Trace ``MultiScaleAttention`` with q, k, v as three projections and heads as batch.

    SAM2 projects q, k and v with one ``Linear`` and splits its output on an inner axis, then
    hands SDPA tensors of [windows, heads, tokens, 96]. Traced as is, ONNX Runtime runs a strided
    ``Split`` of the whole qkv tensor, and it merges k's head transpose with SDPA's k^T into one
    transpose whose innermost axis is the token axis (16 or 64 tokens in the early windowed
    blocks): ~65 + ~75 ms of pure data movement per encode on a 2-core Zen 4
    (docs/BENCHMARKS.md, "fp32 encoder"). Here the same weights, sliced, make three
    projections (no ``Split``), and the heads are folded into the batch axis (3-D q, k, v), so
    k^T is a swap of the last two axes, which ONNX Runtime folds into its MatMul (``transB``).
    Each output element is the same dot product over the same inputs as before.
    """
    from sam2.modeling.backbones import hieradet

    functional = torch.nn.functional
    attention = hieradet.MultiScaleAttention
    original = attention.forward

    def forward(self: Any, x: Any) -> Any:
        batch, height, width, _ = x.shape
        heads = self.num_heads
        weights = self.qkv.weight.chunk(3, dim=0)
        biases = self.qkv.bias.chunk(3, dim=0)
        q, k, v = (functional.linear(x, w, b) for w, b in zip(weights, biases, strict=True))
        if self.q_pool is not None:  # Q pooling at a stage change, on [B, H, W, C] as SAM2 does
            q = hieradet.do_pool(q, self.q_pool)
            height, width = q.shape[1:3]

        def heads_as_batch(t: Any) -> Any:
            tokens = t.shape[1] * t.shape[2]
            if heads == 1:  # [B, N, C] already is [B * heads, N, head_dim]: no transpose at all
                return t.reshape(batch, tokens, -1)
            t = t.reshape(batch, tokens, heads, -1).transpose(1, 2)
            return t.reshape(batch * heads, tokens, -1)

        out = functional.scaled_dot_product_attention(
            heads_as_batch(q), heads_as_batch(k), heads_as_batch(v)
        )
        if heads > 1:
            out = out.reshape(batch, heads, height * width, -1).transpose(1, 2)
        return self.proj(out.reshape(batch, height, width, -1))

    attention.forward = forward
    try:
        yield
    finally:
        attention.forward = original
