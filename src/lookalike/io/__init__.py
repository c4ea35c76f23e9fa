"""Input: image decoding, finding image files, benchmark protocols."""

from lookalike.io.files import find_images
from lookalike.io.images import DEFAULT_MAX_PIXELS, DecodedImage, load_image

__all__ = ["DEFAULT_MAX_PIXELS", "DecodedImage", "find_images", "load_image"]
