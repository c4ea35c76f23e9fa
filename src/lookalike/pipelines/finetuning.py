"""Fine-tune a deep descriptor on labelled images, then (optionally) learn its whitening from them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lookalike.descriptors.base import Descriptor
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import extract


def finetune(source: str | Path, out: str | Path, config=None, *, backbone: str = "efficientnet-lite0",
             weights: str = "", label: str = "", resume: bool = False, plot: str | Path | None = None,
             progress: bool = True) -> dict:
    """Fine-tune on the labelled images of ``source`` (protocol json, CSV or class folders) and
    write the model to ``out``; the report of :meth:`Finetuner.fit` plus how labels were read."""
    from lookalike.train import FinetuneConfig, Finetuner
    from lookalike.train.data import read_labelled, summary

    trainer = Finetuner(config or FinetuneConfig(), backbone=backbone, weights=weights)  # checks the settings
    images, how = read_labelled(source, label)
    start = time.perf_counter()
    report = trainer.fit(images, out, resume=resume, progress=progress)
    report.update(input=f"{summary(images)}, classes from {how}", seconds=time.perf_counter() - start)
    if plot:
        from lookalike.train.plot import plot_training

        report["plot"] = str(plot_training(report["history"], plot, title=f"{Path(out).name}: "
                                           f"{report['training']['loss']} loss"))
    return report


def learn_whitening_from_labels(
    descriptor: Descriptor, source: str | Path, out: str | Path, *, label: str = "", dim: int = 0,
    shrinkage: float = 0.0, workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> tuple[Descriptor, dict]:
    """Learn a :class:`LearnedWhitening` of ``descriptor`` from the matching pairs (same class) of the
    labelled images of ``source``; returns the descriptor that applies it and a report."""
    from lookalike.postprocess.learned_whitening import LearnedWhitening, matching_pairs
    from lookalike.train.data import read_labelled

    if descriptor.config.whitening:
        raise LookalikeError(f"{descriptor.name} is already whitened by {descriptor.config.whitening}")
    images, _ = read_labelled(source, label)
    start = time.perf_counter()
    vectors, labels = [], []
    for (_, result), cls in zip(extract(descriptor, list(images.paths), workers=workers, max_pixels=max_pixels,
                                        progress="whitening sample" if progress else None), images.labels):
        if not isinstance(result, ImageError):
            vectors.append(result.vector)
            labels.append(cls)
    pairs = matching_pairs(np.asarray(labels))
    LearnedWhitening(dim, shrinkage=shrinkage).fit(np.stack(vectors) if vectors else np.zeros((0, 0)), pairs).save(out)
    whitened = type(descriptor)(descriptor.config, whitening=str(Path(out).resolve()))
    return whitened, {"images": len(vectors), "pairs": len(pairs), "dim": whitened.dim,
                      "seconds": time.perf_counter() - start, "whitening": str(out)}
