"""Aggregation of local descriptors into one vector per image: vocabularies, VLAD, Fisher vectors.

Pure functions on arrays: ``x`` is ``(T, D)`` float32 local descriptors of one image.
"""

from lookalike.descriptors.aggregate.fisher import fisher_encode
from lookalike.descriptors.aggregate.vlad import nearest_centers, vlad_encode
from lookalike.descriptors.aggregate.vocabulary import GaussianMixture, KMeansVocabulary

__all__ = ["GaussianMixture", "KMeansVocabulary", "fisher_encode", "nearest_centers", "vlad_encode"]
