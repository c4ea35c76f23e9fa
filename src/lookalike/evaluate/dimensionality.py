"""The curse of dimensionality, measured: distance concentration and PCA energy.

For points spread uniformly in ``[0, 1]^d`` all pairwise distances become alike as ``d`` grows:
the spread of distances over their mean falls like ``3 sqrt(7/180) / sqrt(d) ~ 0.59 / sqrt(d)``
and the relative contrast ``(d_max - d_min) / d_min`` between a query's farthest and nearest
neighbours vanishes (Beyer et al., ICDT 1999). Natural descriptors live near a low-dimensional
subspace: most of their variance sits in a few principal directions, so their neighbours stay
meaningful, and compression (PCA, PQ) loses little. These functions measure both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError

DIMENSIONS = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


def distance_statistics(x: np.ndarray, n_queries: int = 200) -> dict[str, float]:
    """Relative contrast and spread of L2 distances from the first ``n_queries`` rows to the others."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise LookalikeError(f"need (N, D) data with N >= 3, got {x.shape}")
    n_queries = min(n_queries, len(x) - 2)
    queries, others = x[:n_queries], x[n_queries:]
    squared = (queries**2).sum(1)[:, None] - 2 * queries @ others.T + (others**2).sum(1)[None]
    distances = np.sqrt(np.maximum(squared, 0.0))
    nearest, farthest = distances.min(axis=1), distances.max(axis=1)
    contrast = (farthest - nearest) / np.maximum(nearest, 1e-12)
    return {"relative_contrast": float(contrast.mean()),
            "std_over_mean": float(distances.std() / distances.mean())}


def pca_energy(x: np.ndarray) -> np.ndarray:
    """Cumulative share of variance ``(D,)`` kept by the first 1, 2, ..., D principal components."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0)
    variances = np.sort(np.linalg.eigvalsh(centred.T @ centred / max(len(x) - 1, 1)))[::-1]
    variances = np.maximum(variances, 0.0)
    return np.cumsum(variances) / max(variances.sum(), 1e-300)


def concentration_curves(
    real: np.ndarray | None = None, dimensions: Sequence[int] = DIMENSIONS, n_points: int = 2000,
    seed: int = 0,
) -> dict[str, dict[int, dict[str, float]]]:
    """Distance statistics against dimension for uniform data, and for ``real`` descriptors.

    Real descriptors are projected on their first ``d`` principal components for each ``d`` up to
    their own dimension, which is how a PCA-compressed index would see them.
    """
    rng = np.random.default_rng(seed)
    curves: dict[str, dict[int, dict[str, float]]] = {
        "uniform": {d: distance_statistics(rng.random((n_points, d))) for d in dimensions}}
    if real is not None:
        real = np.asarray(real, dtype=np.float64)
        if real.ndim != 2 or len(real) < 10:
            raise LookalikeError(f"descriptors should be (N, D) with N >= 10, got {real.shape}")
        if len(real) > n_points:
            real = real[rng.choice(len(real), n_points, replace=False)]
        centred = real - real.mean(axis=0)
        _, _, axes = np.linalg.svd(centred, full_matrices=False)
        curves["real"] = {d: distance_statistics(centred @ axes[:d].T)
                          for d in dimensions if d <= min(real.shape)}
    return curves


def interpret(curves: dict, energy: np.ndarray | None) -> list[str]:
    """A short reading of the curves, for people."""
    uniform = curves["uniform"]
    low, high = min(uniform), max(uniform)
    lines = [
        f"uniform data: relative contrast falls from {uniform[low]['relative_contrast']:.2f} at d={low} "
        f"to {uniform[high]['relative_contrast']:.3f} at d={high}; distances spread by "
        f"{uniform[high]['std_over_mean']:.3f} of their mean at d={high}: nearest and farthest "
        "neighbours become almost equally far, so nearest-neighbour search loses its meaning.",
    ]
    if "real" in curves and curves["real"]:
        real = curves["real"]
        top = max(real)
        lines.append(compare_contrast(real[top]["relative_contrast"], uniform[top]["relative_contrast"], top))
    if energy is not None:
        for share in (0.5, 0.9, 0.99):
            dims = int(np.searchsorted(energy, share) + 1)
            lines.append(f"{share:.0%} of the variance lies in the first {dims} of {len(energy)} principal components.")
    return lines


def compare_contrast(real: float, uniform: float, dim: int) -> str:
    """One sentence comparing the relative contrast of real descriptors with uniform data's at
    the same dimension ``dim``, that says what the two numbers say."""
    numbers = f"your descriptors: relative contrast {real:.3f} at d={dim} (uniform random data: {uniform:.3f}); "
    ratio = real / uniform if uniform > 0 else float("inf")
    if ratio >= 2:
        return numbers + (f"{ratio:.1f}x more contrast than uniform data: they lie near a low-dimensional "
                          "subspace, and nearest neighbours stand out.")
    if ratio > 1:
        return numbers + "a little more contrast than uniform data: their neighbours barely stand out."
    return numbers + (f"{1 / ratio:.1f}x less contrast than uniform data: their distances are concentrated, "
                      "nearest and farthest neighbours are almost equally far; try a PCA-whitening "
                      "(lookalike train --whiten) or another descriptor.")


def plot(curves: dict, energy: np.ndarray | None, out: str | Path, label: str = "descriptors") -> list[Path]:
    """Write ``concentration.png`` and, with ``energy``, ``pca_energy.png`` into ``out``."""
    from lookalike.evaluate.plots import _pyplot

    plt = _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for name, curve in curves.items():
        dims = sorted(curve)
        shown = "uniform random" if name == "uniform" else label
        axes[0].plot(dims, [curve[d]["relative_contrast"] for d in dims], marker="o", label=shown)
        axes[1].plot(dims, [curve[d]["std_over_mean"] for d in dims], marker="o", label=shown)
    axes[0].set(xscale="log", yscale="log", xlabel="dimension", ylabel="(d_max - d_min) / d_min",
                title="relative contrast of neighbour distances")
    axes[1].set(xscale="log", yscale="log", xlabel="dimension", ylabel="std / mean",
                title="spread of pairwise distances")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    written = [out / "concentration.png"]
    fig.savefig(written[0])
    plt.close(fig)
    if energy is not None:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
        ax.plot(np.arange(1, len(energy) + 1), energy, label=label)
        ax.set(xscale="log", xlabel="principal components kept", ylabel="share of variance",
               ylim=(0, 1.02), title="PCA energy spectrum")
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        written.append(out / "pca_energy.png")
        fig.savefig(written[1])
        plt.close(fig)
    return written
