"""Tiny "foreign" face parsers for the bring-your-own-parser tests, exported to TorchScript and
ONNX: a colour-coded parser whose channel ``k`` wins exactly where the input pixel has colour
``k`` (so the right answer at every pixel is known), and images painted with those colours."""
from __future__ import annotations

import io
import itertools
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.foreign import IMAGENET_MEAN, IMAGENET_STD

LEVELS = (26, 128, 230)
COLOURS = np.array(list(itertools.product(LEVELS, repeat=3))[:19], dtype=np.uint8)
"""``19 x 3`` uint8 RGB colours, pairwise at least 102 apart in some channel."""
SHARPNESS = 20.0
"""Logit scale: the nearest colour wins by a wide margin, also over several channels merged."""


class ColourCoded(nn.Module):
    """Channel ``k``'s logit is ``-SHARPNESS * |x - c_k|^2`` (up to a term shared by all channels) in the
    normalised space the parser sees, so the nearest palette colour wins; returns a tuple
    ``(logits, aux)`` (``as_dict``: ``{"seg": logits}``) like real exported parsers."""

    def __init__(self, channels: int = 19, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 as_dict: bool = False) -> None:
        super().__init__()
        colours = torch.from_numpy(COLOURS[:channels]).float() / 255.0
        centres = (colours - torch.tensor(mean)) / torch.tensor(std)
        self.conv = nn.Conv2d(3, channels, 1)
        with torch.no_grad():
            self.conv.weight.copy_(2 * SHARPNESS * centres[:, :, None, None])
            self.conv.bias.copy_(-SHARPNESS * (centres ** 2).sum(dim=1))
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor):
        y = self.conv(x)
        if self.as_dict:
            return {"seg": y}
        return y, y.mean()


def torchscript_file(path: Path, **kwargs) -> Path:
    """The colour-coded parser saved with ``torch.jit.trace``."""
    model = ColourCoded(**kwargs).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.rand(1, 3, 32, 32), strict=False)
    traced.save(str(path))
    return path


def onnx_file(path: Path, size: int | None = None, **kwargs) -> Path:
    """The colour-coded parser exported to ONNX (legacy exporter); ``size``: fixed batch 1 at
    ``size x size``, else dynamic batch and sides."""
    model = ColourCoded(**kwargs).eval()
    dynamic = None if size else {"image": {0: "batch", 2: "h", 3: "w"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.rand(1, 3, size or 32, size or 32), buf, dynamo=False,
                          input_names=["image"], output_names=["logits", "aux"],
                          dynamic_axes=dynamic)
    path.write_bytes(buf.getvalue())
    return path


def painted(size: int = 64, block: int = 8, channels: int = 19) -> tuple[np.ndarray, np.ndarray]:
    """``(size x size x 3 uint8 image, size x size foreign class ids)``: ``block``-pixel squares,
    square ``i`` painted with colour ``i % channels``."""
    n = size // block
    cls = (np.arange(n * n) % channels).reshape(n, n)
    ids = np.kron(cls, np.ones((block, block), dtype=np.int64))
    return COLOURS[ids], ids
