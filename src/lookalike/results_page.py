"""A self-contained HTML page of search results: query, ranked thumbnails, scores."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from lookalike.errors import ImageError
from lookalike.io.images import load_image

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
h1 { font-size: 1.3em; } .query { margin-bottom: 2em; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; width: 170px; background: white; border: 1px solid #ddd; padding: 5px; }
figure.q { border: 2px solid #2a6ebb; }
figure img { max-width: 160px; max-height: 160px; display: block; margin: auto; }
figcaption { font-size: 0.75em; overflow-wrap: anywhere; margin-top: 4px; }
.score { font-weight: bold; }
"""


def thumbnail_uri(path: str | Path, size: int = 160) -> str:
    """A ``data:`` URI of a JPEG thumbnail, or an empty string if the image cannot be read."""
    try:
        pixels = load_image(path, max_side=size).pixels
    except ImageError:
        return ""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render(searches: Sequence[tuple[str, Sequence]], title: str = "lookalike results") -> str:
    """HTML for ``searches``: (query path, hits with ``rank``, ``path`` and ``score``) pairs."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>"]
    for query, hits in searches:
        parts.append("<section class='query'><div class='row'>")
        parts.append(_figure(query, "query", "q"))
        for hit in hits:
            parts.append(_figure(hit.path, f"#{hit.rank} <span class='score'>{hit.score:.4f}</span>"))
        parts.append("</div></section>")
    return "\n".join(parts)


def render_groups(groups: Sequence[Sequence[dict]], title: str = "lookalike near-duplicates") -> str:
    """HTML for groups of near-duplicates: members with ``path``, ``width``, ``height``, ``score``."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>"]
    for group in groups:
        parts.append("<section class='query'><div class='row'>")
        for rank, m in enumerate(group):
            score = "best copy" if rank == 0 else f"<span class='score'>{m['score']:.4f}</span>"
            caption = f"{score} {m['width']}x{m['height']}"
            parts.append(_figure(m["path"], caption, "q" if rank == 0 else ""))
        parts.append("</div></section>")
    return "\n".join(parts)


def _figure(path: str | Path, caption: str, css: str = "") -> str:
    uri = thumbnail_uri(path)
    image = f"<img src='{uri}' alt=''>" if uri else "<em>unreadable</em>"
    return (f"<figure class='{css}'>{image}<figcaption>{caption}<br>"
            f"{html.escape(Path(path).name)}</figcaption></figure>")
