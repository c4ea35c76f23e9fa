"""Fisher vectors (Perronnin & Dance CVPR 2007; improved: Perronnin, Sánchez & Mensink ECCV 2010)."""

from __future__ import annotations

import numpy as np

from lookalike.descriptors.aggregate.checks import local_descriptors, signed_power
from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise
from lookalike.threads import threads_for


def gmm_log_joint(x: np.ndarray, means: np.ndarray, variances: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``log w_k + log N(x_t | mu_k, s2_k)`` ``(T, K)`` for a diagonal GMM, in matrix form.

    ``log N(x | mu, s2) = -1/2 [sum log(2 pi s2) + x^2 . (1/s2) - 2 x . (mu/s2) + sum mu^2/s2]``:
    two BLAS products instead of a loop over components (on one thread for one image's descriptors).
    """
    x = np.asarray(x, dtype=np.float64)
    inverse = 1.0 / variances
    with threads_for(2 * x.size * len(means)):
        log_likelihood = -0.5 * (
            np.log(2.0 * np.pi * variances).sum(axis=1)
            + (x * x) @ inverse.T
            - 2.0 * x @ (means * inverse).T
            + (means * means * inverse).sum(axis=1)
        )
    return log_likelihood + np.log(weights)


def gmm_posteriors(x: np.ndarray, means: np.ndarray, variances: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Soft assignments ``(T, K)`` of ``x (T, D)`` to a diagonal GMM (a softmax of the log joint)."""
    log_joint = gmm_log_joint(x, means, variances, weights)
    log_joint -= log_joint.max(axis=1, keepdims=True)
    joint = np.exp(log_joint)
    return joint / joint.sum(axis=1, keepdims=True)


def fisher_encode(
    x: np.ndarray, means: np.ndarray, variances: np.ndarray, weights: np.ndarray, *,
    improved: bool = True,
) -> np.ndarray:
    """Fisher vector of ``x (T, D)`` under a diagonal GMM of ``K`` components.

    Args:
        means, variances: ``(K, D)``; variances are the diagonal of each covariance.
        weights: ``(K,)`` mixture weights (priors), summing to 1.
        improved: apply the signed square root and then L2 normalisation.

    Returns ``(2 * K * D,)`` float32 in VLFeat's layout ``[u_1..u_K, v_1..v_K]``, with
    ``u_k = sum_t q_tk (x_t - mu_k) / sigma_k / (T sqrt(w_k))`` (gradient w.r.t. the means) and
    ``v_k = sum_t q_tk [((x_t - mu_k) / sigma_k)^2 - 1] / (T sqrt(2 w_k))`` (w.r.t. the
    variances). It matches VLFeat's ``vl_fisher_encode`` (flag ``VL_FISHER_FLAG_IMPROVED`` when
    ``improved``).
    """
    means = local_descriptors(means)
    k, d = means.shape
    variances = np.asarray(variances, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if variances.shape != (k, d) or weights.shape != (k,):
        raise LookalikeError(
            f"GMM shapes disagree: means {means.shape}, variances {variances.shape}, weights {weights.shape}"
        )
    if (variances <= 0).any() or (weights <= 0).any():
        raise LookalikeError("GMM variances and weights must be positive")
    x = local_descriptors(x, d)
    if len(x) == 0:
        return np.zeros(2 * k * d, dtype=np.float32)
    mu = means.astype(np.float64)
    q = gmm_posteriors(x, mu, variances, weights)  # (T, K)
    xd = x.astype(np.float64)
    mass = q.sum(axis=0)[:, None]  # (K, 1)
    with threads_for(2 * xd.size * k):
        first = q.T @ xd  # (K, D): sum_t q_tk x_t
        second = q.T @ (xd * xd)  # (K, D): sum_t q_tk x_t^2
    sigma = np.sqrt(variances)
    u = (first - mass * mu) / sigma
    v = (second - 2.0 * mu * first + mass * mu * mu) / variances - mass
    n = len(x)
    u /= n * np.sqrt(weights)[:, None]
    v /= n * np.sqrt(2.0 * weights)[:, None]
    fv = np.concatenate([u.reshape(-1), v.reshape(-1)])
    if improved:
        fv = l2_normalise(signed_power(fv, 0.5))
    return fv.astype(np.float32)
