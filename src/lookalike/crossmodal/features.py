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
import torch

from lookalike.descriptors.cnn.registered import Gem


class MirroredGem(Gem):
    """GeM (Radenović et al., PAMI 2018) of the image and its mirror image, averaged (every scale,
    both views): the flip test-time augmentation of Krizhevsky et al. (NIPS 2012) as a descriptor."""

    name = "gem-flip"
    advice = "GeM averaged with the mirror image: left-right invariant, for joint image-text spaces"

    def compute(self, image: np.ndarray) -> np.ndarray:
        total = torch.zeros(self.raw_dim)
        for view in (image, np.ascontiguousarray(image[:, ::-1])):
            for pixels in self.prepare(view):
                total += torch.nn.functional.normalize(self.pool(self.feature_map(pixels)[None]), dim=1)[0]
        return torch.nn.functional.normalize(total, dim=0).numpy()
