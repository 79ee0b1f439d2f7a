"""The encoder's high-resolution features traced as one projection each (export time only).

``SAM2ImagePredictor`` computes ``high_res_feats_0`` as the mask decoder's ``conv_s0`` applied to
the FPN neck's level-0 output, and that output is only the neck's lateral 1x1 convolution of the
trunk's first stage (level 0 takes no top-down features in SAM2's configs). Two 1x1 convolutions
in a row with nothing between them are one linear map, so the trace folds them into one: for
level 0 a 96 -> 32 convolution instead of 96 -> 256 -> 32 over 256 x 256 pixels, which skips
~4 GFLOP and a 64 MB intermediate (level 1: 192 -> 64 instead of 192 -> 256 -> 64, ~1.7 GFLOP).
The folded weights are computed in float64, so the graph differs from SAM2's two-step float32
result only by float32 rounding; the parity tests compare the export against SAM2's own
modules.

torch and sam2 are imported inside the functions, so importing this module never loads them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

#: neck level -> the mask decoder's projection of it, as ``SAM2Base.forward_image`` applies them.
HIGH_RES_PROJECTIONS = {0: "conv_s0", 1: "conv_s1"}


@contextlib.contextmanager
def high_res_projections_folded(torch: Any, model: Any) -> Iterator[list[int]]:
    """For the duration of the trace, each foldable level's lateral convolution becomes the
    composed projection and the decoder's ``conv_s*`` an identity. Yields the folded levels."""
    decoder = model.sam_mask_decoder
    folded = [level for level in HIGH_RES_PROJECTIONS if _foldable_level(model, level)]
    swaps: list[tuple[Any, str, Any]] = []
    for level in folded:
        lateral, head_name = _lateral(model, level), HIGH_RES_PROJECTIONS[level]
        swaps.append((lateral, "conv", _composed(torch, getattr(decoder, head_name), lateral.conv)))
        swaps.append((decoder, head_name, torch.nn.Identity()))
    originals = [(parent, name, getattr(parent, name)) for parent, name, _ in swaps]
    for parent, name, module in swaps:
        setattr(parent, name, module)
    log.debug("folded the high-resolution projections of neck levels %s", folded)
    try:
        yield folded
    finally:
        for parent, name, module in originals:
            setattr(parent, name, module)


def _lateral(model: Any, level: int) -> Any:
    """The neck's ``Sequential`` holding level ``level``'s lateral ``conv``
    (``FpnNeck.convs`` runs from the lowest resolution to the highest)."""
    convs = model.image_encoder.neck.convs
    return convs[len(convs) - 1 - level]


def _foldable_level(model: Any, level: int) -> bool:
    """The level's neck output is its lateral convolution alone and feeds nothing but its
    ``conv_s*``: no top-down sum into it, and the level below takes no top-down from it."""
    if not getattr(model, "use_high_res_features_in_sam", False):
        return False
    top_down = set(model.image_encoder.neck.fpn_top_down_levels)
    if level in top_down or level - 1 in top_down:
        return False
    head = getattr(model.sam_mask_decoder, HIGH_RES_PROJECTIONS[level])
    return _pointwise(_lateral(model, level).conv) and _pointwise(head)


def _pointwise(conv: Any) -> bool:
    return (
        tuple(conv.kernel_size) == (1, 1)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.padding) == (0, 0)
        and tuple(conv.dilation) == (1, 1)
        and conv.groups == 1
        and conv.bias is not None
    )


def _composed(torch: Any, head: Any, lateral: Any) -> Any:
    """``head(lateral(x))`` as one 1x1 convolution: W = W_head W_lateral, b = W_head b_lateral +
    b_head, in float64 and rounded once."""
    w_head = head.weight.detach().double()[:, :, 0, 0]
    weight = w_head @ lateral.weight.detach().double()[:, :, 0, 0]
    bias = w_head @ lateral.bias.detach().double() + head.bias.detach().double()
    conv = torch.nn.Conv2d(lateral.in_channels, head.out_channels, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(weight[:, :, None, None].float())
        conv.bias.copy_(bias.float())
    return conv.eval()
