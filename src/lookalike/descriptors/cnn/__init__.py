"""Deep features: an offline pretrained backbone, the engines that run it, and pooling functions.

The pooling functions map a feature map ``[B, C, H, W]`` to ``[B, C]``; the registered
descriptors built on them live in :mod:`lookalike.descriptors.cnn.registered`.
"""

from lookalike.descriptors.cnn.pooling import (
    GeM,
    NetVLAD,
    crow,
    gem,
    mac,
    rmac,
    rmac_regions,
    spoc,
)

__all__ = ["GeM", "NetVLAD", "crow", "gem", "mac", "rmac", "rmac_regions", "spoc"]
