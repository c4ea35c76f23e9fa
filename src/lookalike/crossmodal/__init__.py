"""Cross-modal search: text encoders, a joint image-text space, and the metrics of text<->image retrieval.

The layers, bottom up: pure functions (:mod:`.losses` the triplet and InfoNCE losses,
:mod:`.cca` the closed-form baseline, :mod:`.metrics` Recall@K and median rank), then the thin
classes that hold state (:mod:`.text` the text encoder registry, :mod:`.joint` the joint embedding
that learns two projection heads, :mod:`.zeroshot` the bridge through the ImageNet classifier's
class names). Nothing here is imported by ``import lookalike``; torch and sentence-transformers
load only when used (extra ``[text]``).
"""
