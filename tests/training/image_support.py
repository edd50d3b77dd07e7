"""Image datasets for the image tests: coloured shapes drawn with Pillow, as image/caption rows
(data URLs) or as PNG files, and the pixel statistic the colour tests measure."""

from __future__ import annotations

import io
from typing import Any

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 50), "blue": (30, 60, 220), "yellow": (235, 220, 40)}
SHAPES = ("square", "circle", "triangle", "diamond")


def shape_png(colour: tuple[int, int, int], shape: str, size: int = 32, background=(245, 245, 245)) -> bytes:
    """A `shape` filling most of a `size` image, in `colour`, on a light background."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    lo, hi, mid = size * 0.1, size * 0.9, size / 2
    if shape == "square":
        draw.rectangle([lo, lo, hi, hi], fill=colour)
    elif shape == "circle":
        draw.ellipse([lo, lo, hi, hi], fill=colour)
    elif shape == "triangle":
        draw.polygon([(mid, lo), (hi, hi), (lo, hi)], fill=colour)
    else:
        draw.polygon([(mid, lo), (hi, mid), (mid, hi), (lo, mid)], fill=colour)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def one_colour_png(colour: str, shape: str, size: int = 32) -> bytes:
    """An image of one colour: the shape in a darker shade of `colour` on `colour` itself."""
    rgb = COLOURS[colour]
    return shape_png(tuple(int(c * 0.7) for c in rgb), shape, size, background=rgb)


def one_colour_rows(colour: str = "red", repeats: int = 2) -> list[dict[str, Any]]:
    """Image/caption rows of one colour: every shape, `repeats` times."""
    from polytune.data.images import to_data_url

    return [
        {"image": to_data_url(one_colour_png(colour, shape)), "caption": f"a {colour} {shape}"}
        for shape in SHAPES
        for _ in range(repeats)
    ]


def colour_distance(image, colour: str) -> float:
    """Mean Euclidean RGB distance of the image's pixels from `colour` (0 = every pixel is it)."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return float(np.linalg.norm(pixels - np.array(COLOURS[colour], dtype=np.float32), axis=-1).mean())
