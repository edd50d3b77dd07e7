"""Image/caption training examples: the format image-generation jobs train on.

One JSON line per example, the image inline as a data URL (as OpenAI's vision fine-tuning
files carry theirs), so a training file holds its data whole, like a pinned commit, and
every API can read it like any other file:

    {"image": "data:image/png;base64,iVBORw0...", "caption": "a red square"}
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

# What Pillow must recognise an image file as; anything else is "not an image".
IMAGE_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_PREFIX = "data:"


def image_problem(data: bytes) -> str | None:
    """Why `data` is not a readable image (None when it is one)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in IMAGE_FORMATS:
                return f"is a {img.format} image; expected one of {', '.join(IMAGE_FORMATS)}"
            img.load()  # decodes the pixels: a truncated or corrupt file fails here, not in training
            if min(img.size) < 1:
                return "is an empty image"
    except UnidentifiedImageError:
        return "is not an image file (Pillow can't identify it)"
    except (OSError, ValueError, SyntaxError) as e:
        return f"is not a readable image ({e})"
    return None


def to_data_url(data: bytes) -> str:
    """`data` (a checked image) as a data URL with its real media type."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        media = IMAGE_FORMATS[img.format]
    return f"{_PREFIX}{media};base64,{base64.b64encode(data).decode()}"


def from_data_url(url: str) -> bytes:
    head, _, payload = url.partition(",")
    if not head.startswith(_PREFIX) or not head.endswith(";base64"):
        raise ValueError("expected a base64 data URL (data:image/...;base64,...)")
    return base64.b64decode(payload, validate=True)


def image_caption_problems(obj: dict[str, Any]) -> list[str]:
    problems = []
    extra = sorted(set(obj) - {"image", "caption"})
    if extra:
        problems.append(f"unexpected field{'s' if len(extra) > 1 else ''} {', '.join(extra)}")
    caption = obj.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        problems.append("caption: must be a non-empty string")
    image = obj.get("image")
    if not isinstance(image, str):
        problems.append("image: must be a data URL string (data:image/png;base64,...)")
        return problems
    try:
        data = from_data_url(image)
    except (ValueError, binascii.Error) as e:
        problems.append(f"image: {e}")
        return problems
    problem = image_problem(data)
    if problem:
        problems.append(f"image: {problem}")
    return problems


def image_caption_row(obj: dict[str, Any]) -> dict[str, Any]:
    return {"image": obj["image"], "caption": obj["caption"]}
