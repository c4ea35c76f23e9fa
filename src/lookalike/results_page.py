"""A self-contained HTML page of search results: query, ranked thumbnails, scores.

A spatially verified result is drawn beside the query, with its inlier matches as lines between
the two thumbnails (an inline SVG).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
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
figure.pair { width: auto; } figure.pair svg { display: block; }
"""
#: lines drawn per verified result at most (the page stays light)
MAX_LINES = 150
#: pixels between the query and the result in a drawn pair
GAP = 12


def thumbnail_uri(path: str | Path, size: int = 160) -> str:
    """A ``data:`` URI of a JPEG thumbnail, or an empty string if the image cannot be read."""
    return _thumbnail(path, size)[0]


def _thumbnail(path: str | Path, size: int = 160) -> tuple[str, tuple[int, int]]:
    """The thumbnail's ``data:`` URI (empty if unreadable) and its ``(width, height)``."""
    try:
        pixels = load_image(path, max_side=size).pixels
    except ImageError:
        return "", (size, size)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return uri, (pixels.shape[1], pixels.shape[0])


def render(searches: Sequence[tuple[str, Sequence]], title: str = "lookalike results") -> str:
    """HTML for ``searches``: (query path, hits with ``rank``, ``path`` and ``score``) pairs.

    A hit with ``matches`` (:class:`~lookalike.pipelines.searching.InlierMatches`) is drawn as a
    pair with its inlier matches, and its ``inliers`` are printed."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>"]
    for query, hits in searches:
        parts.append("<section class='query'><div class='row'>")
        parts.append(_figure(query, "query", "q"))
        for hit in hits:
            caption = f"#{hit.rank} <span class='score'>{hit.score:.4f}</span>"
            if getattr(hit, "inliers", None) is not None:
                caption += f" &middot; {hit.inliers} inliers"
            if getattr(hit, "matches", None) is not None:
                parts.append(_pair(query, hit.path, hit.matches, caption))
            else:
                parts.append(_figure(hit.path, caption))
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


def _pair(query: str | Path, path: str | Path, matches, caption: str) -> str:
    """The query and a verified result side by side in one SVG, with a line per inlier match
    (keypoints scaled from the images the features were computed on to the thumbnails)."""
    (query_uri, (qw, qh)), (uri, (rw, rh)) = _thumbnail(query), _thumbnail(path)
    left = _scaled(matches.query, matches.query_size, (qw, qh))
    right = _scaled(matches.result, matches.result_size, (rw, rh)) + [qw + GAP, 0]
    keep = np.linspace(0, len(left) - 1, min(len(left), MAX_LINES)).round().astype(int) if len(left) else []
    lines = "".join(f"<line x1='{a[0]:.1f}' y1='{a[1]:.1f}' x2='{b[0]:.1f}' y2='{b[1]:.1f}'/>"
                    for a, b in zip(left[keep], right[keep]))
    width, height = qw + GAP + rw, max(qh, rh)
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}'>"
           f"<image href='{query_uri}' x='0' y='0' width='{qw}' height='{qh}'/>"
           f"<image href='{uri}' x='{qw + GAP}' y='0' width='{rw}' height='{rh}'/>"
           f"<g class='inliers' stroke='#19d419' stroke-width='0.8' stroke-opacity='0.8'>{lines}</g></svg>")
    return (f"<figure class='pair'>{svg}<figcaption>{caption}<br>"
            f"{html.escape(Path(path).name)}</figcaption></figure>")


def _scaled(points: np.ndarray, source: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates ``(M, 2)`` in an image of size ``source`` moved to one of size ``target``
    (pixel centres stay centres)."""
    scale = np.array(target, np.float64) / np.array(source, np.float64)
    return (np.asarray(points, np.float64) + 0.5) * scale - 0.5
