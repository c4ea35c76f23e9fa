"""Cross-modal pipelines: train and evaluate a joint embedding on a captioned image set, give a
collection a joint space, and search it with words, an image plus words, or rank sentences for
an image.

A collection that carries a joint space holds a copy of the model (``joint.pt``, its sha256 under
``files`` in the manifest) and ``joint-<generation>.faiss``: the stored descriptor vectors, projected
by the model's image head. Like the visual index, that file is derived from the vectors in SQLite,
so it is rebuilt (without decoding any image) whenever it is missing or older than the metadata.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lookalike.crossmodal.features import vector_and_views
from lookalike.crossmodal.joint import JointConfig, JointEmbedding
from lookalike.crossmodal.metrics import text_image_retrieval
from lookalike.crossmodal.text import TextEncoder, create_text_encoder
from lookalike.descriptors.base import Descriptor
from lookalike.errors import CollectionError, ImageError, LookalikeError
from lookalike.index import bundle
from lookalike.index import vectors as flat
from lookalike.index.collection import Collection
from lookalike.io.captions import CaptionedImages, load_captions
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.norms import l2_normalise
from lookalike.pipelines.extract import decode_for, extract
from lookalike.pipelines.searching import Hit

JOINT_FILE = "joint.pt"


# ---- training and evaluation ---------------------------------------------------------------
def describe_captioned(descriptor: Descriptor, data: CaptionedImages, *, workers: int | None = None,
                       max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True,
                       compute=None) -> tuple[np.ndarray, CaptionedImages, list[ImageError]]:
    """Describe every image of ``data``; unusable ones are dropped with their captions."""
    vectors, kept, skipped = [], [], []
    for i, (_, result) in enumerate(extract(descriptor, data.paths, workers=workers, max_pixels=max_pixels,
                                            progress="describing" if progress else None, compute=compute)):
        if isinstance(result, ImageError):
            skipped.append(result)
        else:
            vectors.append(result.vector)
            kept.append(i)
    if len(kept) < 2:
        raise LookalikeError(f"only {len(kept)} of the {len(data)} captioned images could be described")
    return np.stack(vectors).astype(np.float32), data.subset(kept), skipped


def holdout_indices(n: int, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, held_out)`` indices of ``n`` images: ``holdout`` of them evenly spaced are held out."""
    if not 0 <= holdout <= n - 2:
        raise LookalikeError(f"--holdout {holdout} must leave at least 2 of the {n} training images to fit on")
    held = np.unique(np.linspace(0, n - 1, holdout).round().astype(np.int64)) if holdout else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(n), held), held


def caption_documents(data: CaptionedImages) -> np.ndarray:
    """Each image's captions as one L2-normalised tf-idf row (learnt on these captions): the caption
    similarity that the visual loss of Gordo & Larlus follows."""
    tfidf = create_text_encoder("tfidf").fit(data.captions)
    rows = tfidf.encode(data.documents())
    return l2_normalise(rows)


def train_joint(source: str | Path, descriptor: Descriptor, text_encoder: TextEncoder, out: str | Path, *,
                config: JointConfig | None = None, holdout: int = 100, resume: bool = False, device: str = "cpu",
                plot: str | Path | None = None, workers: int | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True) -> tuple[JointEmbedding, dict]:
    """Learn a joint embedding on the ``train`` images of ``source`` and save it to ``out``.

    ``holdout`` training images (evenly spaced) are kept aside for model selection and early
    stopping; the ``test`` split is never read. A checkpoint ``<out>.ckpt`` is written after each
    epoch; ``resume`` goes on from it.
    """
    start = time.perf_counter()
    data = load_captions(source, "train")
    augment = config is not None and config.augment == "views"
    if augment and not hasattr(descriptor, "views"):
        raise LookalikeError(f"--augment views: {descriptor.name} has no views; use a deep descriptor with several "
                             "scales or the mirror image, e.g. -d gem-flip -s scales=1,0.7071,0.5,1.4142")
    vectors, data, skipped = describe_captioned(descriptor, data, workers=workers, max_pixels=max_pixels,
                                                progress=progress, compute=vector_and_views if augment else None)
    views = None
    if augment:  # each image's vector, then its views
        vectors, views = np.ascontiguousarray(vectors[:, 0]), vectors[:, 1:]
    fit_idx, held_idx = holdout_indices(len(data), holdout)
    fit, held = data.subset(fit_idx), data.subset(held_idx)
    text_encoder = text_encoder.fit(fit.captions)
    texts = text_encoder.encode(fit.captions)
    validation = None
    if len(held_idx):
        validation = (vectors[held_idx], text_encoder.encode(held.captions), held.owner)
    described = time.perf_counter() - start
    model = JointEmbedding(config, image_spec=descriptor.spec(), text_spec=text_encoder.spec())
    model.fit(vectors[fit_idx], texts, fit.owner, caption_vectors=caption_documents(fit),
              views=None if views is None else views[fit_idx], validation=validation,
              checkpoint=Path(str(out) + ".ckpt"), resume=resume, device=device, progress=progress)
    model.report_.update(held_out=int(len(held_idx)), skipped=len(skipped), describe_seconds=described)
    model.save(out)
    if plot and model.history_:
        from lookalike.crossmodal.training import plot_history

        plot_history(model.history_, plot, title=f"{model.config.method}: {descriptor.name} + {text_encoder.name}")
    return model, model.report_


def evaluate_joint(source: str | Path, model: JointEmbedding, *, split: str = "test", workers: int | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True) -> dict:
    """Text->image and image->text Recall@1/5/10 and median rank on ``split`` of ``source``."""
    data = load_captions(source, split)
    vectors, data, skipped = describe_captioned(model.image_descriptor, data, workers=workers,
                                                max_pixels=max_pixels, progress=progress)
    images, texts = model.encode_images(vectors), model.encode_texts(model.text_encoder.encode(data.captions))
    result = text_image_retrieval(images, texts, data.owner, image_penalties=model.image_penalties(images),
                                  text_penalties=model.text_penalties(texts))
    return {**result, "images": len(data), "captions": len(data.captions), "skipped": len(skipped)}


def evaluate_zero_shot(source: str | Path, text_encoder: TextEncoder, *, split: str = "test", top: int = 5,
                       workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                       progress: bool = True) -> dict:
    """The same protocol through the zero-shot bridge (no training): ImageNet classes named in words."""
    from lookalike.crossmodal.zeroshot import ZeroShotBridge, classifier_logits
    from lookalike.descriptors import create

    data = load_captions(source, split)
    logits, data, skipped = describe_captioned(create("cnn-fc"), data, workers=workers, max_pixels=max_pixels,
                                               progress=progress, compute=classifier_logits)
    bridge = ZeroShotBridge(text_encoder, top=top)
    result = text_image_retrieval(bridge.encode_images(logits), bridge.encode_texts(data.captions), data.owner)
    return {**result, "images": len(data), "captions": len(data.captions), "skipped": len(skipped)}


# ---- collections ---------------------------------------------------------------------------
def attach_joint(collection: Collection, model_path: str | Path) -> JointEmbedding:
    """Give ``collection`` the joint space of the model at ``model_path``: copy the model into the
    collection, record its sha256, and build the projected index from the stored vectors."""
    model = JointEmbedding.load(model_path)
    stored = collection.manifest["descriptor"]
    if model.image_spec != stored:
        raise CollectionError(
            f"{model_path}: its image head reads {model.image_spec.get('name')} {model.image_spec.get('config')}, "
            f"but {collection.path} stores {stored['name']} {stored['config']}; train the joint model on the "
            "collection's descriptor (lookalike train-joint -d ... -s ...)")
    files = dict(collection.manifest.get(bundle.FILES, {}))
    bundle.keep(collection.path, model_path, JOINT_FILE, files)
    collection.set_manifest(files=files, joint={"file": JOINT_FILE, "dim": model.dim,
                                                "text": model.text_spec.get("name"), "method": model.config.method})
    for old in collection.path.glob("joint-*.faiss"):
        old.unlink()
    joint_index(collection, model)
    return model


def joint_model(collection: Collection) -> JointEmbedding:
    """The joint model a collection carries, checked against the sha256 in its manifest."""
    if "joint" not in collection.manifest:
        raise CollectionError(f"{collection.path} carries no joint space; add one with "
                              f"`lookalike reindex {collection.path} --joint joint.pt`")
    name = collection.manifest["joint"]["file"]
    bundle.check(collection.path, {name: collection.manifest.get(bundle.FILES, {}).get(name)})
    return JointEmbedding.load(bundle.resolve(collection.path, name))


def gallery_rows(model: JointEmbedding, vectors: np.ndarray) -> np.ndarray:
    """Image descriptors as the rows of a joint index: their joint-space rows and, for a model with
    the hubness correction, one more column, minus its penalty (see :func:`query_rows`)."""
    rows = model.encode_images(vectors)
    if not model.config.hubness:
        return rows
    return np.ascontiguousarray(np.hstack([rows, -model.image_penalties(rows)[:, None]]), dtype=np.float32)


def query_rows(model: JointEmbedding, queries: np.ndarray) -> np.ndarray:
    """Joint-space query rows against :func:`gallery_rows`: with the hubness correction, one more
    column of ones, so that the inner product is the cosine minus the image's penalty."""
    if not model.config.hubness:
        return queries
    return np.ascontiguousarray(np.hstack([queries, np.ones((len(queries), 1), np.float32)]), dtype=np.float32)


def joint_index(collection: Collection, model: JointEmbedding):
    """The faiss index of the stored images in the joint space, for the current generation: read
    from ``joint-<generation>.faiss``, else projected from the stored vectors (and saved, if writable)."""
    current = collection.path / f"joint-{collection.metadata.generation}.faiss"
    if current.exists():
        return flat.read(current)
    ids, vectors = collection.metadata.vectors()
    index = flat.new_index(model.dim + (1 if model.config.hubness else 0))
    if len(ids):
        index.add_with_ids(gallery_rows(model, vectors), ids)
    if collection.writable:
        flat.write_atomically(index, current)
        for old in collection.path.glob("joint-*.faiss"):
            if old != current:
                old.unlink(missing_ok=True)
    return index


def refresh_joint(collection: Collection) -> None:
    """After a write: bring the joint index of a collection that carries one up to date."""
    if "joint" in collection.manifest:
        joint_index(collection, joint_model(collection))


def joint_queries(model: JointEmbedding, *, text: str | None = None, image_vectors: np.ndarray | None = None,
                  text_weight: float = 1.0) -> np.ndarray:
    """Query rows in the joint space: a sentence, images, or images plus a sentence as a modifier
    (Gordo & Larlus: the sum of the two normalised embeddings, the text weighted by ``text_weight``)."""
    parts = []
    if image_vectors is not None:
        parts.append(model.encode_images(np.atleast_2d(image_vectors)))
    if text:
        parts.append(text_weight * model.encode_texts(model.text_encoder.encode([text])))
    if not parts:
        raise LookalikeError("nothing to search with: give a query image, --text, or both")
    queries = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    return l2_normalise(queries).astype(np.float32)


def search_joint(collection: Collection, *, text: str | None = None, query: str | Path | None = None,
                 text_weight: float = 1.0, k: int = 10, max_pixels: int = DEFAULT_MAX_PIXELS,
                 model: JointEmbedding | None = None, index=None) -> list[Hit]:
    """Search ``collection``'s joint space with a sentence, a query image, or both (a mixed query).

    ``model`` and ``index`` (the collection's :func:`joint_model` and :func:`joint_index`) are
    loaded when not given; a caller that searches many times (the service) loads them once.
    """
    model = model if model is not None else joint_model(collection)
    vectors = None
    if query is not None:
        descriptor = collection.descriptor
        vectors = descriptor(decode_for(query, descriptor, max_pixels=max_pixels).pixels)
    queries = joint_queries(model, text=text, image_vectors=vectors, text_weight=text_weight)
    scores, ids = flat.search(index if index is not None else joint_index(collection, model),
                              query_rows(model, queries), k)
    rows = collection.lookup(ids[0])
    return [Hit(rank, row["path"], float(score), int(ident))
            for rank, (score, ident, row) in enumerate(zip(scores[0], ids[0], rows), start=1) if row is not None]


def caption_image(image: str | Path, sentences: list[str], model: JointEmbedding, *, k: int = 5,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[int, float, str]]:
    """Image->text: ``(rank, score, sentence)`` of the ``k`` sentences closest to ``image`` in the joint space."""
    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise LookalikeError("no sentences to rank; give a file with one sentence per line")
    descriptor = model.image_descriptor
    vector = descriptor(decode_for(image, descriptor, max_pixels=max_pixels).pixels)
    texts = model.encode_texts(model.text_encoder.encode(sentences))
    scores = texts @ model.encode_images(vector[None])[0] - model.text_penalties(texts)
    order = np.argsort(-scores, kind="stable")[:k]
    return [(rank, float(scores[i]), sentences[i]) for rank, i in enumerate(order, start=1)]
