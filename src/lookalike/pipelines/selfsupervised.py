"""Self-supervised training for copy detection (SSCD) on the images of a folder, without labels."""

from __future__ import annotations

import time
from pathlib import Path

from lookalike.errors import LookalikeError


def unlabelled_images(source: str | Path) -> list[Path]:
    """The images of ``source``: a folder (searched recursively), or a protocol json / CSV whose
    labels, if any, are ignored."""
    source = Path(source)
    if source.is_dir():
        from lookalike.io.files import find_images

        paths = find_images([source])
        if not paths:
            raise LookalikeError(f"{source}: no images found in this folder")
        return paths
    from lookalike.train.data import read_labelled

    if source.suffix.lower() == ".json" and source.is_file():
        from lookalike.io.protocol import load_protocol

        return load_protocol(source).database_paths()
    return list(read_labelled(source)[0].paths)


def train_selfsupervised(source: str | Path, out: str | Path, config=None, *, backbone: str = "efficientnet-lite0",
                         weights: str = "", resume: bool = False, plot: str | Path | None = None,
                         progress: bool = True) -> dict:
    """Train on the images of ``source`` (:func:`unlabelled_images`) with :class:`SelfSupervisedTrainer`
    and write the model to ``out``; the training report, plus the input and the seconds spent."""
    from lookalike.train.selfsup import SelfSupervisedConfig, SelfSupervisedTrainer

    trainer = SelfSupervisedTrainer(config or SelfSupervisedConfig(), backbone=backbone, weights=weights)
    paths = unlabelled_images(source)
    start = time.perf_counter()
    report = trainer.fit(paths, out, resume=resume, progress=progress)
    report.update(input=f"{len(paths)} unlabelled images", seconds=time.perf_counter() - start)
    if plot:
        from lookalike.train.plot import plot_training

        report["plot"] = str(plot_training(report["history"], plot, title=f"{Path(out).name}: self-supervised (SSCD)"))
    return report
