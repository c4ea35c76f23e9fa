"""The demo collection: scikit-image's bundled photographs plus edited copies as queries.

Every photograph ships inside the scikit-image wheel, so the demo runs on a machine with no
internet. Each original is a database image; five edited copies of it (crop, heavy JPEG, rotation,
colour change, downscaling) are queries whose correct answer is the original. The two views of
the stereo motorcycle pair are both correct answers for each other's copies.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from lookalike.errors import LookalikeError

PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel",
          "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina",
          "rocket", "text")
EDITS = ("crop", "jpeg", "rotate", "colour", "small")


def _originals() -> dict[str, Image.Image]:
    try:
        from skimage import data
    except ImportError:
        raise LookalikeError("the demo needs scikit-image: pip install 'lookalike[demo]'") from None
    images = {name: getattr(data, name)() for name in PHOTOS}
    left, right, _ = data.stereo_motorcycle()
    images["motorcycle_left"], images["motorcycle_right"] = left, right
    out = {}
    for name, array in images.items():
        image = Image.fromarray(np.asarray(array))
        image = image.convert("RGB")
        image.thumbnail((640, 640), Image.Resampling.LANCZOS)
        out[name] = image
    return out


def edit(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    """One realistic edit of ``image``; parameters are drawn from ``rng``."""
    w, h = image.size
    if kind == "crop":  # keep 50% of the area at a random position
        cw, ch = int(w * 0.7071), int(h * 0.7071)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return image.crop((x, y, x + cw, y + ch))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=8)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if kind == "rotate":  # rotate, then crop away the empty corners
        rotated = image.rotate(rng.choice((-1, 1)) * rng.uniform(6, 12), Image.Resampling.BICUBIC)
        return rotated.crop((w // 8, h // 8, w - w // 8, h - h // 8))
    if kind == "colour":
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.4, 1.6))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
        return ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))
    if kind == "small":
        return image.resize((max(8, w // 4), max(8, h // 4)), Image.Resampling.BOX)
    raise ValueError(kind)


def build_demo_set(out: str | Path) -> Path:
    """Write ``out/images/{database,queries}/`` and ``out/protocol.json``; return the protocol path."""
    out = Path(out)
    (out / "images" / "database").mkdir(parents=True, exist_ok=True)
    (out / "images" / "queries").mkdir(parents=True, exist_ok=True)
    originals = _originals()
    imlist = [f"database/{name}.jpg" for name in sorted(originals)]
    for name, image in originals.items():
        image.save(out / "images" / "database" / f"{name}.jpg", quality=92)
    qimlist, gnd, qattack = [], [], []
    for name in sorted(originals):
        same = [name] if not name.startswith("motorcycle") else ["motorcycle_left", "motorcycle_right"]
        for kind in EDITS:
            rng = random.Random(f"lookalike-demo-{name}-{kind}")
            query = f"queries/{name}_{kind}.jpg"
            edit(originals[name], kind, rng).save(out / "images" / query, quality=90)
            qimlist.append(query)
            gnd.append({"ok": [imlist.index(f"database/{s}.jpg") for s in same], "junk": []})
            qattack.append(kind)
    protocol = {
        "name": "lookalike-demo",
        "description": "scikit-image photographs; queries are edited copies of the originals",
        "source": "skimage.data (scikit-image), edited by lookalike.io.demo_photos",
        "license": "see scikit-image's data README (public domain and CC-licensed photographs)",
        "imlist": imlist, "qimlist": qimlist, "gnd": gnd, "qattack": qattack,
    }
    path = out / "protocol.json"
    path.write_text(json.dumps(protocol, indent=1))
    return path
