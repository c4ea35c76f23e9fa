"""Train the heads of the course's other trainable models on labelled images, the network frozen:
NetVLAD (``-d netvlad``), the Fisher vector + MLP hybrid (``-d fvfc``) and DELF's attention
(``-d delf``). Each computes its frozen input once per image, then trains with
:func:`lookalike.train.frozen.fit_head` and writes the file its descriptor reads."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lookalike.errors import ImageError, LookalikeError
from lookalike.pipelines.extract import extract

HEADS = ("netvlad", "fvfc", "delf")


def train_head(model: str, source: str | Path, out: str | Path, config, descriptor, *, label: str = "",
               resolution: int = 224, resume: bool = False, plot: str | Path | None = None,
               workers: int | None = None, progress: bool = True) -> dict:
    """Train the head of ``model`` (one of :data:`HEADS`) on the labelled images of ``source``.

    ``descriptor`` is the ``netvlad`` or ``fvfc`` descriptor (its options: backbone, k, ...) or the
    ``delf`` extractor; ``config`` a :class:`~lookalike.train.frozen.HeadConfig`. Writes ``out``
    (and ``out.checkpoint`` every epoch) and returns the training report.
    """
    from lookalike.train.data import read_labelled, summary

    if model not in HEADS:
        raise LookalikeError(f"unknown model {model!r}; choose one of {', '.join(HEADS)}")
    config.check()
    images, how = read_labelled(source, label)
    start = time.perf_counter()
    train = {"netvlad": train_netvlad, "fvfc": train_fvfc, "delf": train_attention}[model]
    report = train(images, out, config, descriptor, resolution=resolution, resume=resume, workers=workers,
                   progress=progress)
    report.update(input=f"{summary(images)}, classes from {how}", seconds=time.perf_counter() - start)
    if plot:
        from lookalike.train.plot import plot_training

        report["plot"] = str(plot_training(report["history"], plot, title=f"{Path(out).name}: {model}, "
                                           f"{report['training']['loss']} loss"))
    return report


def _checkpoint(out: str | Path) -> Path:
    return Path(out).with_name(Path(out).name + ".checkpoint")


def network_inputs(runner, paths, resolution: int, *, batch: int = 16, progress: bool = True):
    """``[N, C, h, w]`` float16 feature maps of the images squashed to ``resolution`` squares,
    by ``runner`` (an engine: ``[B, 3, H, W]`` float32 pixels -> a numpy feature map). All in
    memory: 125 kB per image for EfficientNet-Lite0's last map at 224 px (1.2 GB for 10,000)."""
    import torch

    from lookalike.train.data import decode_square

    pixels = decode_square(tuple(paths), resolution, progress="decoding training images" if progress else None)
    return torch.cat([torch.from_numpy(runner(np.ascontiguousarray(pixels[i:i + batch], dtype=np.float32))).half()
                      for i in range(0, len(pixels), batch)])


# ---- NetVLAD -------------------------------------------------------------------------------------
def train_netvlad(images, out, config, descriptor, *, resolution: int, resume: bool = False,
                  workers: int | None = None, progress: bool = True) -> dict:
    """NetVLAD trained with a ranking loss over the frozen backbone's last feature map. Starts
    from the descriptor's ``vocabulary`` (k-means centres) if it has one, else learns it from the
    training classes' maps as ``lookalike train`` would."""
    from lookalike.descriptors.aggregate.trained import read_netvlad
    from lookalike.descriptors.cnn.registered import netvlad_from_file
    from lookalike.train.data import split_classes
    from lookalike.train.frozen import fit_head
    from lookalike.train.heads import save_netvlad

    maps = network_inputs(descriptor.engine, images.paths, resolution, progress=progress)
    with tempfile.TemporaryDirectory() as folder:
        if not descriptor.trained:
            rows, _ = split_classes(images, config.val_fraction, config.seed)
            sample = [maps[i].float().flatten(1).T.numpy() for i in rows]
            descriptor = descriptor.fit(sample, Path(folder) / "kmeans.npz", seed=config.seed)
        start = descriptor.config.vocabulary
        layer = netvlad_from_file(start, descriptor.config.k)
        alpha = float(read_netvlad(start, descriptor.config.k)["alpha"])
    report = fit_head(layer, maps, images, config, checkpoint=_checkpoint(out), resume=resume, progress=progress)
    report["model"] = {"name": "netvlad", "k": descriptor.config.k, "backbone": descriptor.config.backbone,
                       "resolution": resolution}
    save_netvlad(layer, alpha, out, report)
    report["use"] = f"-d netvlad -s k={descriptor.config.k} -s vocabulary={out}"
    return report


# ---- Fisher vector + MLP -------------------------------------------------------------------------
def _fisher_vector(descriptor, image):
    return descriptor(image)


def train_fvfc(images, out, config, descriptor, *, resolution: int = 0, resume: bool = False,
               workers: int | None = None, progress: bool = True) -> dict:
    """The Fisher vector + MLP hybrid: the GMM learnt on the training classes' SIFT, the Fisher
    vectors of every image, their PCA (unsupervised, training classes), then the MLP."""
    from lookalike.pipelines.training import train_descriptor
    from lookalike.train.data import split_classes

    rows, _ = split_classes(images, config.val_fraction, config.seed)
    with tempfile.TemporaryDirectory() as folder:
        fisher, _ = train_descriptor(descriptor.fisher, [images.paths[i] for i in rows], Path(folder) / "gmm.npz",
                                     workers=workers, seed=config.seed, progress=progress)
        vectors = []
        for path, result in extract(fisher, list(images.paths), workers=workers, compute=_fisher_vector,
                                    progress="Fisher vectors" if progress else None):
            if isinstance(result, ImageError):
                raise LookalikeError(f"training image {result}; remove it from the training input")
            vectors.append(result.vector)
        return train_fvfc_on_vectors(np.stack(vectors), images, fisher.model, out, config, descriptor,
                                     resume=resume, progress=progress)


def train_fvfc_on_vectors(vectors: np.ndarray, images, fisher_model: dict, out, config, descriptor, *,
                          resume: bool = False, progress: bool = True) -> dict:
    """The hybrid's PCA and MLP from Fisher vectors ``(N, D)`` already computed (one per image)."""
    import torch

    from lookalike.postprocess.pca import PCA
    from lookalike.train.data import split_classes
    from lookalike.train.frozen import fit_head
    from lookalike.train.heads import FisherMlp, save_fvfc

    c = descriptor.config
    rows, _ = split_classes(images, config.val_fraction, config.seed)
    if c.reduce > min(len(rows) - 1, vectors.shape[1]):
        raise LookalikeError(f"fvfc: reduce={c.reduce} needs more than {c.reduce} training images and Fisher "
                             f"vectors of at least {c.reduce} values; got {len(rows)} and {vectors.shape[1]}: "
                             "lower -s reduce")
    pca = PCA(c.reduce).fit(vectors[rows])
    torch.manual_seed(config.seed)
    mlp = FisherMlp(c.reduce, c.hidden, c.out)
    inputs = torch.from_numpy(pca.transform(vectors).astype(np.float32))
    report = fit_head(mlp, inputs, images, config, checkpoint=_checkpoint(out), resume=resume, progress=progress)
    report["model"] = {"name": "fvfc", "k": c.k, "pca": c.pca, "reduce": c.reduce, "hidden": c.hidden, "out": c.out}
    save_fvfc(out, fisher_model, pca.mean_, pca.components_, mlp, report)
    report["use"] = f"-d fvfc -s vocabulary={out}" + "".join(
        f" -s {k}={getattr(c, k)}" for k in ("k", "pca", "reduce", "hidden", "out")
        if getattr(c, k) != getattr(type(c)(), k))
    return report


# ---- DELF attention ------------------------------------------------------------------------------
def train_attention(images, out, config, extractor, *, resolution: int, resume: bool = False,
                    workers: int | None = None, progress: bool = True, hidden: int = 512) -> dict:
    """DELF's attention head, trained with a classification loss over the training classes on the
    attention-weighted mean of the frozen block's features (Noh et al., ICCV 2017)."""
    import torch

    from lookalike.descriptors.cnn.local import AttentionHead, delf_engine, save_attention
    from lookalike.train.frozen import fit_head
    from lookalike.train.heads import AttentionPooling

    e = extractor.config
    runner, _, channels = delf_engine(e.backbone, e.block, e.engine, e.threads)
    maps = network_inputs(runner, images.paths, resolution, progress=progress)
    torch.manual_seed(config.seed)
    head = AttentionHead(channels, hidden)
    report = fit_head(AttentionPooling(head), maps, images, replace(config, loss="classification"),
                      checkpoint=_checkpoint(out), resume=resume, progress=progress)
    report["model"] = {"name": "delf-attention", "resolution": resolution}
    save_attention(head, out, {"backbone": e.backbone, "block": e.block, "training": report})
    report["use"] = f"--local-features delf --local-set attention={out}"
    return report
