"""Image features for the joint space, built on the registered deep descriptors.

``gem-flip`` is GeM (Radenović et al., PAMI 2018) of the image and of its mirror image at every
scale: the ``2 x scales`` L2-normalised vectors are summed, then normalised. A caption rarely
depends on left and right, so the mirror is a second look at the same content; averaging it is
the horizontal-flip test-time augmentation of image classification (Krizhevsky et al. 2012),
here applied to the descriptor itself, at training and at search time alike. It costs two forward
passes per scale.
"""

from __future__ import annotations

import numpy as np

from lookalike.descriptors.cnn.registered import Gem
from lookalike.norms import l2_normalise


class MirroredGem(Gem):
    """GeM (Radenović et al., PAMI 2018) of the image and its mirror image, averaged (every scale,
    both views): the flip test-time augmentation of Krizhevsky et al. (NIPS 2012) as a descriptor."""

    name = "gem-flip"
    advice = "GeM averaged with the mirror image: left-right invariant, for joint image-text spaces"

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, ...]:
        """The image at each scale, then its mirror image at each scale: GeM's sum over the
        prepared inputs then covers both views, in either engine."""
        return super().prepare(image) + super().prepare(np.ascontiguousarray(image[:, ::-1]))


def vector_and_views(descriptor, pixels: np.ndarray) -> np.ndarray:
    """``[1 + V, dim]``: the descriptor's vector of one image, then the vector each of its ``V`` views
    (scales, mirror images) would give alone, for the view augmentation of the joint space's training
    (a module-level function, so that extraction workers can run it)."""
    views = descriptor.views(pixels)  # what the descriptor sums (as its compute does)
    raw = np.concatenate([l2_normalise(views.sum(axis=0))[None], views])
    return descriptor.finish(raw).astype(np.float32)
