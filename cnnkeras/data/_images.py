"""Image files as cameras store them. A phone keeps most portrait photos as landscape pixels
plus an EXIF Orientation tag (1-8) that viewers apply; decoders such as TensorFlow's ignore it.
The tag is read once, with the colour mode, when a folder is scanned (the header only), and the
pipeline turns the decoded pixels upright (``upright``); files read one at a time go through
PIL's own ``exif_transpose`` (``read_image``), the reference the pipeline is tested against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from cnnkeras.errors import UserError

ORIENTATION_TAG = 0x0112
GREY_MODES = frozenset({"L", "LA", "1", "I;16", "I"})


def image_header(path: str | Path) -> tuple[str, int] | None:
    """(colour mode, EXIF orientation 1-8) from the file's header, nothing decoded; None if it
    is not an image PIL knows. Files whose pixels turn out to be broken are skipped later."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode, exif_orientation(image)
    except Exception:  # PIL raises many types for truncated or non-image files
        return None


def exif_orientation(image) -> int:
    """The EXIF orientation (1-8) of an open PIL image; 1 where the tag is absent or bad."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block: show the pixels as stored, as viewers do
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_image(path: str | Path) -> np.ndarray:
    """uint8 pixels of any image file PIL reads, upright, in grey (H, W) or RGB (H, W, 3)."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise UserError("no such file")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("L" if image.mode in GREY_MODES else "RGB"))
    except (OSError, ValueError) as err:
        raise UserError(f"not a readable image ({err})") from None


def upright(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """``image`` (H, W, C) as shown for its EXIF ``orientation``: the eight tags are the
    identity, the two mirrors, the three rotations and the two diagonal transposes."""

    def transpose(x):
        return tf.transpose(x, (1, 0, 2))

    branches = [
        lambda: image,
        lambda: tf.image.flip_left_right(image),  # 2: mirrored
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.image.flip_up_down(image),  # 4: mirrored upside down
        lambda: transpose(image),  # 5: mirrored, turned
        lambda: tf.image.rot90(image, 3),  # 6: stored turned left, shown turned right
        lambda: tf.image.rot90(transpose(image), 2),  # 7: the other diagonal
        lambda: tf.image.rot90(image, 1),  # 8: stored turned right
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    out = tf.switch_case(index, branches)
    out.set_shape((None, None, image.shape[-1]))
    return out
