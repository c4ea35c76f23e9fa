"""Aggregation of local descriptors into one vector per image: vocabularies, bag of words, VLAD,
Fisher vectors and spatial pyramids.

Pure functions on arrays: ``x`` is ``(T, D)`` float32 local descriptors of one image.
"""

from lookalike.descriptors.aggregate.bow import bow_encode
from lookalike.descriptors.aggregate.fisher import fisher_encode
from lookalike.descriptors.aggregate.pyramid import pyramid_cells, spatial_pyramid
from lookalike.descriptors.aggregate.vlad import nearest_centers, vlad_encode
from lookalike.descriptors.aggregate.vocabulary import GaussianMixture, KMeansVocabulary

__all__ = ["GaussianMixture", "KMeansVocabulary", "bow_encode", "fisher_encode", "nearest_centers",
           "pyramid_cells", "spatial_pyramid", "vlad_encode"]
