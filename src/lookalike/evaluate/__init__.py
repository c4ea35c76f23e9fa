"""Evaluation: average precision on Oxford-style protocols, reports and plots."""

from lookalike.evaluate.ap import average_precision, positive_ranks
from lookalike.evaluate.metrics import evaluate_rankings

__all__ = ["average_precision", "evaluate_rankings", "positive_ranks"]
