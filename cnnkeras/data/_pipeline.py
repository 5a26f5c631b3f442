"""One tf.data pipeline for every dataset: decode, resize, convert channels, scale, cache,
shuffle, batch, augment (training only, never inside the saved model) and prefetch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from cnnkeras.data._datasets import Split
from cnnkeras.errors import UserError

AUGMENTATIONS = ("flip", "rotation", "zoom", "translation")
DEFAULT_AUGMENT = ("rotation", "zoom", "translation")  # no flip: it turns digits into non-digits


@dataclass(frozen=True)
class Preprocessing:
    """How raw uint8 pixels become model input: recorded in config.json for every later use."""

    height: int
    width: int
    channels: int
    scale: float = 1.0 / 255.0
    offset: float = 0.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        return {**asdict(self), "color_order": "RGB" if self.channels == 3 else "grayscale"}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(d["height"], d["width"], d["channels"], d["scale"], d["offset"])


def _to_model_input(image: tf.Tensor, prep: Preprocessing) -> tf.Tensor:
    """uint8 HxWxC (any C of 1, 3, 4) -> float32 model input."""
    channels = image.shape[-1]
    if channels == 4:
        image = image[..., :3]
        channels = 3
    if channels == 1 and prep.channels == 3:
        image = tf.image.grayscale_to_rgb(image)
    elif channels == 3 and prep.channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    image = tf.cast(image, tf.float32)
    if tuple(image.shape[:2]) != (prep.height, prep.width):
        image = tf.image.resize(image, (prep.height, prep.width), antialias=True)
    return image * prep.scale + prep.offset


def _decode_file(path: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape((None, None, 3))
    return image


def _source(split: Split) -> tf.data.Dataset:
    labels = split.labels.astype(np.int64)
    if split.paths is not None:
        ds = tf.data.Dataset.from_tensor_slices((split.paths, labels))
        return ds.map(lambda p, y: (_decode_file(p), y), num_parallel_calls=tf.data.AUTOTUNE)
    if isinstance(split.images, np.ndarray):
        return tf.data.Dataset.from_tensor_slices((split.images, labels))
    channels = split.images[0].shape[-1]

    def generate():
        yield from zip(split.images, labels, strict=True)

    return tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec((None, None, channels), tf.uint8),
            tf.TensorSpec((), tf.int64),
        ),
    )


def augmentation_layers(kinds: Sequence[str], seed: int) -> list:
    import keras

    unknown = sorted(set(kinds) - set(AUGMENTATIONS))
    if unknown:
        raise UserError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)}"
        )
    table = {
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=seed),
        "rotation": lambda: keras.layers.RandomRotation(0.05, fill_mode="constant", seed=seed),
        "zoom": lambda: keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed),
        "translation": lambda: keras.layers.RandomTranslation(
            0.1, 0.1, fill_mode="constant", seed=seed
        ),
    }
    return [table[k]() for k in AUGMENTATIONS if k in kinds]


def make_pipeline(
    split: Split,
    prep: Preprocessing,
    num_classes: int,
    *,
    batch_size: int = 64,
    training: bool = False,
    augment: Sequence[str] = (),
    seed: int = 0,
    one_hot: bool = True,
) -> tf.data.Dataset:
    """Batches of (float32 images, one-hot labels); shuffled and augmented when training."""
    ds = _source(split).map(
        lambda x, y: (_to_model_input(x, prep), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    ds = ds.cache()
    if training:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment:
        layers = augmentation_layers(augment, seed)

        def apply(x, y):
            for layer in layers:
                x = layer(x, training=True)
            return x, y

        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    if one_hot:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)))
    return ds.prefetch(tf.data.AUTOTUNE)


def preprocess_images(images: Sequence[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """Model input for a list of uint8 images of any size and channel count."""
    out = []
    for image in images:
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        out.append(_to_model_input(tf.convert_to_tensor(image, tf.uint8), prep).numpy())
    return np.stack(out)
