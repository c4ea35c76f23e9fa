"""Cleaning noisy labelled training images by spatial verification (Gordo et al. ECCV 2016).

Pure functions at the bottom (:mod:`~lookalike.clean.verification`: every verified pair of a
class, matched with the re-ranking's batched matcher, and the graph's largest component), the
config and the per-class loop above them (:mod:`~lookalike.clean.cleaning`).
:mod:`lookalike.pipelines.cleaning` ties it to files and ``lookalike clean`` to the command line.
"""

from lookalike.clean.cleaning import CleanConfig, clean_classes

__all__ = ["CleanConfig", "clean_classes"]
