"""The PyTorch reference (``SAM2ImagePredictor``) for parity tests.

torchvision has no build for the torch installed here, and the reference only needs three of its
transforms, so :func:`install_torchvision_shim` provides them with plain torch ops: ``ToTensor``
(HWC uint8 -> CHW float in [0, 1]), ``Resize`` (bilinear, antialiased, as torchvision does on
tensors) and ``Normalize``. Test-only code.
"""

from __future__ import annotations

import sys
import types

import numpy as np


def install_torchvision_shim() -> None:
    try:
        import torchvision.transforms  # noqa: F401

        return
    except Exception:  # any failure to import the real one means: use the shim
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]

    import torch
    import torch.nn.functional as F
    from torch import nn

    class ToTensor:
        def __call__(self, pic: np.ndarray) -> torch.Tensor:
            array = np.array(pic)  # a writable copy, as torch.from_numpy wants
            tensor = torch.from_numpy(array.transpose((2, 0, 1))).contiguous()
            return tensor.to(dtype=torch.float32).div(255)

    class Resize(nn.Module):
        def __init__(self, size: tuple[int, int]) -> None:
            super().__init__()
            self.size = [int(size[0]), int(size[1])]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = F.interpolate(
                x.unsqueeze(0),
                size=self.size,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
            return out.squeeze(0)

    class Normalize(nn.Module):
        def __init__(self, mean: list[float], std: list[float]) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x - self.mean) / self.std

    package = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor = ToTensor
    transforms.Resize = Resize
    transforms.Normalize = Normalize
    package.transforms = transforms
    sys.modules["torchvision"] = package
    sys.modules["torchvision.transforms"] = transforms


def reference_predictor(config: str, seed: int):  # -> SAM2ImagePredictor
    """The reference predictor with the same random weights our exporter used for ``seed``."""
    install_torchvision_shim()
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from sam2_annotator.models.export import build_model, resolve_variant

    model = build_model(resolve_variant(config), checkpoint=None, seed=seed)
    return SAM2ImagePredictor(model)
