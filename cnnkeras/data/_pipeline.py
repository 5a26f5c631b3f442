"""One tf.data pipeline for every dataset: decode, resize, convert channels, scale, cache,
shuffle, batch, augment (training only, never inside the saved model) and prefetch.

Nothing is read into memory ahead: folders stream file paths and tfds sets stream encoded
records, shuffled before they are decoded; decoded images are cached only where the whole
split fits a memory budget (or on disk, when asked). A file that fails to decode is skipped,
and a ``DecodeTally`` counts it."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from cnnkeras.data._datasets import Split, read_tfds
from cnnkeras.data._images import upright
from cnnkeras.errors import UserError

GEOMETRIC = ("flip", "rotation", "zoom", "translation")  # what test-time augmentation repeats
MIXING = ("mixup", "cutmix")  # batch-level: images and their labels mixed in pairs
AUGMENTATIONS = (*GEOMETRIC, "randaugment", *MIXING)
DEFAULT_AUGMENT = ("rotation", "zoom", "translation")  # no flip: it turns digits into non-digits
MIX_STRENGTHS = {"mixup": 0.2, "cutmix": 1.0}  # the alpha of Beta(alpha, alpha): Keras's defaults
# the geometric ranges in training (turns, fractions of the side); test-time augmentation
# takes half of each
ROTATION, ZOOM, TRANSLATION = 0.05, 0.1, 0.1
CACHES = ("auto", "memory", "disk", "none")
CACHE_BUDGET_MB = 1024.0  # "auto" caches decoded images in memory up to this size
SHUFFLE_RECORDS = 4096  # shuffle buffer of encoded tfds records, and of disk-cached images
# How an image is resized to the model's input. "phone" is what MediaPipe Tasks does in an app
# (``_phone_resize``: its sampling and fixed-point weights), so that training, evaluation and
# the app see the same pixels; new runs use it. "antialias" is the pipeline's earlier resize
# (area-averaging when it shrinks), which runs recorded without a resize keep.
RESIZES = ("phone", "antialias")


@dataclass(frozen=True)
class Preprocessing:
    """How raw uint8 pixels become model input: recorded in config.json for every later use."""

    height: int
    width: int
    channels: int
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    resize: str = "phone"  # one of RESIZES

    def __post_init__(self):
        if self.resize not in RESIZES:
            raise UserError(f"`resize` must be one of {', '.join(RESIZES)}, got {self.resize!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def image_bytes(self) -> int:
        """Bytes of one preprocessed (float32) image."""
        return 4 * self.height * self.width * self.channels

    def to_dict(self) -> dict:
        return {**asdict(self), "color_order": "RGB" if self.channels == 3 else "grayscale"}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        resize = d.get("resize", "antialias")  # recorded before phones' resize was the default
        return cls(d["height"], d["width"], d["channels"], d["scale"], d["offset"], resize)


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
        image = resize_image(image, prep)
    return image * prep.scale + prep.offset


def resize_image(image: tf.Tensor, prep: Preprocessing) -> tf.Tensor:
    """A float HxWxC image at the model's input size, resized as ``prep.resize`` says."""
    if prep.resize == "antialias":
        return tf.image.resize(image, (prep.height, prep.width), antialias=True)
    return _phone_resize(image, prep.height, prep.width)


def _bilinear_table() -> np.ndarray:
    """OpenCV's fixed-point bilinear weights (``initInterTab2D``): for each of 32x32 sub-pixel
    positions, the four neighbours' weights in 1/32768, rounded and corrected to sum to 32768."""
    table = np.zeros((32, 32, 4), np.int32)
    for fy in range(32):
        for fx in range(32):
            vy = np.float32([1 - fy / 32, fy / 32])
            vx = np.float32([1 - fx / 32, fx / 32])
            w = np.rint(np.outer(vy, vx).astype(np.float32).ravel() * 32768).astype(np.int32)
            excess = int(w.sum()) - 32768
            if excess:
                w[int(np.argmax(w)) if excess > 0 else int(np.argmin(w))] -= excess
            table[fy, fx] = w
    return table


_BILINEAR = _bilinear_table()


def _phone_positions(source: tf.Tensor, height: int, width: int):
    """Where MediaPipe samples the source (``source``: its height and width) for each output
    row and column, in 1/32 of a pixel, computed as OpenCV computes it: the inverse of the
    scaling matrix by cofactors, in double precision, and per column block of warpPerspective
    (16 rows by 1024 / 16 columns). Half-way cases then round the way OpenCV's do."""
    m00 = tf.cast(width, tf.float64) / tf.cast(source[1], tf.float64)
    m11 = tf.cast(height, tf.float64) / tf.cast(source[0], tf.float64)
    det = m00 * m11
    inverse = 1.0 / det
    scale = 32.0 / (det * inverse)
    block = min(1024 // min(16, height), width)
    x = tf.range(width, dtype=tf.float64)
    start = tf.floor(x / block) * block
    fx = (m11 * inverse * start + m11 * inverse * (x - start)) * scale
    fy = m00 * inverse * tf.range(height, dtype=tf.float64) * scale
    return tf.cast(tf.round(fy), tf.int32), tf.cast(tf.round(fx), tf.int32)


def _phone_resize(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """MediaPipe Tasks' resize of a frame to a model's input (its CPU path: OpenCV's
    warpPerspective, bilinear, replicated border): output pixel x samples the source at
    x * W / w (pixel corners, no antialiasing), at 1/32 of a pixel, with OpenCV's fixed-point
    weights, into whole grey levels. Bit-identical to MediaPipe's own output
    (tests/test_phone.py) except for a few frame sizes (about 3% of widths, 103 say) where
    OpenCV's LU solve of the transform leaves residue that flips half-way samples; the
    opencv-python wheel's own warpPerspective is further off (6-14% of values)."""
    shape = tf.shape(image)
    fixed_y, fixed_x = _phone_positions(shape, height, width)

    def neighbours(fixed, size):
        first = tf.minimum(fixed // 32, size - 1)
        return first, tf.minimum(first + 1, size - 1), fixed % 32

    y0, y1, fy = neighbours(fixed_y, shape[0])
    x0, x1, fx = neighbours(fixed_x, shape[1])
    weights = tf.gather(tf.gather(tf.constant(_BILINEAR), fy), fx, axis=1)  # (h, w, 4)
    pixels = tf.cast(tf.round(image), tf.int32)
    rows0, rows1 = tf.gather(pixels, y0), tf.gather(pixels, y1)
    corners = [tf.gather(rows, x, axis=1) for rows in (rows0, rows1) for x in (x0, x1)]
    total = sum(weights[..., k, None] * corners[k] for k in range(4))
    rounded = tf.bitwise.right_shift(total + (1 << 14), 15)
    return tf.cast(tf.clip_by_value(rounded, 0, 255), tf.float32)


def _decode(encoded: tf.Tensor) -> tf.Tensor:
    """RGB pixels of an encoded image. JPEGs are decoded with libjpeg's accurate integer IDCT,
    the default of PIL, OpenCV and the phones' decoders (bit-identical to PIL, checked in
    tests/test_phone.py); TensorFlow's own default, the fast IDCT, is up to 6 grey levels off,
    enough to change the answer of a model on some real photos (BENCHMARKS.md)."""
    image = tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False),
    )
    image.set_shape((None, None, 3))
    return image


class DecodeTally:
    """Which images of a split have been decoded; after one full pass over the split, those
    that never were are the files that failed to decode and were skipped."""

    def __init__(self, split: Split):
        self.split = split
        self._seen = tf.Variable(tf.zeros(len(split), tf.bool), trainable=False)

    def mark(self, position: tf.Tensor) -> None:
        self._seen.scatter_nd_update(tf.reshape(position, (1, 1)), [True])

    def failed(self) -> list[str]:
        """The images not decoded so far: file paths, or ``tfds:NAME[split][position]``."""
        missing = np.flatnonzero(~self._seen.numpy())
        if self.split.paths is not None:
            return [self.split.paths[i] for i in missing]
        source = self.split.tfds
        if source is None:
            return [f"image {i}" for i in missing]
        return [f"tfds:{source.name}[{source.split}][{self.split.index[i]}]" for i in missing]


def _positions(split: Split, seed: int | tf.Tensor | None) -> tf.data.Dataset:
    """(encoded image or pixels, label, position in the split), shuffled before decoding with
    ``seed`` (None: in order): file paths and record positions are cheap to shuffle, decoded
    images are not."""
    n = len(split)
    labels = split.labels.astype(np.int64)
    positions = np.arange(n, dtype=np.int64)
    if split.tfds is not None:
        ds = read_tfds(split.tfds)
        if ds is None:
            raise UserError(f"tfds:{split.tfds.name} has no split {split.tfds.split!r}")
        # position in this split of each record of the tfds split, -1 for records of others
        lookup = np.full(int(split.index.max()) + 1 if n else 0, -1, np.int64)
        lookup[split.index] = positions
        lookup = tf.constant(lookup)
        ds = ds.enumerate().take(len(lookup))
        ds = ds.map(lambda i, record: (record[0], record[1], tf.gather(lookup, i)))
        ds = ds.filter(lambda image, label, pos: pos >= 0)
        if seed is not None:
            ds = ds.shuffle(min(n, SHUFFLE_RECORDS), seed=seed)
        return ds.map(lambda image, label, pos: (_decode(image), label, pos), tf.data.AUTOTUNE)
    if split.paths is not None:
        # bytes, as the file system names them: a name need not be UTF-8
        paths = np.array([os.fsencode(p) for p in split.paths], dtype=object)
        ds = tf.data.Dataset.from_tensor_slices((paths, labels, positions))
        if seed is not None:
            ds = ds.shuffle(n, seed=seed)
        turned = None if split.orientation is None else tf.constant(split.orientation)

        def load(path, label, pos):
            image = _decode(tf.io.read_file(path))
            if turned is not None:
                image = upright(image, tf.gather(turned, pos))
            return image, label, pos

        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = tf.data.Dataset.from_tensor_slices((split.images, labels, positions))
    if seed is not None:
        ds = ds.shuffle(n, seed=seed)
    return ds


_ORIENTATION = tf.TensorSpec((), tf.uint8)


def random_key(seed: int, *parts) -> tf.Tensor:
    """A stateless random key (an int64 pair) that is a function of ``seed`` and ``parts``
    (epoch, step, stream) alone: what makes an epoch's shuffle, augmentation and mixing the
    same whether the run got there in one go or was resumed."""
    key = tf.constant([seed, 0], tf.int64)
    for part in parts:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(part, tf.int64))
    return key


def _keyed_seed(key: tf.Tensor):
    """A Keras ``SeedGenerator`` whose n-th draw is ``key`` folded with n: no state, so a
    layer's random draws are a function of the key."""
    import keras

    class KeyedSeed(keras.random.SeedGenerator):
        def __init__(self):  # no state variable: that is the point
            self.draws = 0

        def next(self, ordered=True):
            self.draws += 1
            return tf.random.experimental.stateless_fold_in(key, self.draws)

    return KeyedSeed()


def _keyed(layers: Sequence, key: tf.Tensor):
    """While tracing a map function: ``layers`` (and the layers inside them, as RandAugment's)
    draw their randomness from ``key`` instead of their seed generators' state."""
    from cnnkeras import _keras_internals

    return _keras_internals.seed_generator(layers, _keyed_seed(key))


@contextlib.contextmanager
def _graph_seed_aside():
    """While tracing an epoch: no graph-level seed, so that a shuffle's order is a function of
    its (tensor) seed alone. It also avoids a TensorFlow bug: with the global seed 0, tf.data
    compares a tensor seed with 0 in Python and fails."""
    graph = tf.compat.v1.get_default_graph()
    saved, graph.seed = graph.seed, None
    try:
        yield
    finally:
        graph.seed = saved


def _per_step(ds: tf.data.Dataset, seed: int, epoch, stream: int, fn) -> tf.data.Dataset:
    """``fn(key, *batch)`` on each batch, with the key of (seed, epoch, step, stream); in
    parallel, as nothing is shared between batches (the order stays the dataset's)."""
    return ds.enumerate().map(
        lambda step, batch: fn(random_key(seed, epoch, step, stream), *batch),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def resolve_cache(cache: str, nbytes: int, budget_mb: float = CACHE_BUDGET_MB) -> str:
    """'auto' is 'memory' when ``nbytes`` of decoded images fit the budget, else 'none'."""
    if cache not in CACHES:
        raise UserError(f"cache must be one of {', '.join(CACHES)}, got {cache!r}")
    if cache != "auto":
        return cache
    return "memory" if nbytes <= budget_mb * 2**20 else "none"


def cache_file(cache_dir: str | Path, split: Split, prep: Preprocessing) -> Path:
    """A disk cache's file name, unique to the split's images and the preprocessing."""
    key = hashlib.sha256()
    key.update(repr(sorted(asdict(prep).items())).encode())
    key.update(np.asarray(split.index, np.int64).tobytes())
    key.update(b"\n".join(os.fsencode(p) for p in split.paths or []))
    if split.tfds is not None:
        key.update(repr(split.tfds).encode())
    return Path(cache_dir) / f"cache-{key.hexdigest()[:16]}"


def _clear_unfinished(prefix: Path) -> None:
    """A cache whose writer was killed leaves a lock file that would stop every later read;
    an unfinished cache is removed and written again."""
    if any(prefix.parent.glob(prefix.name + "*.lockfile")):
        for leftover in prefix.parent.glob(prefix.name + "*"):
            leftover.unlink()


def check_augmentations(kinds: Sequence[str]) -> None:
    """Refuse a kind of augmentation that is not one of AUGMENTATIONS."""
    unknown = sorted(set(kinds) - set(AUGMENTATIONS))
    if unknown:
        raise UserError(
            f"`augment`: unknown augmentation {', '.join(unknown)}; choose from "
            f"{', '.join(AUGMENTATIONS)}"
        )


def augmentation_layers(
    kinds: Sequence[str], seed: int, value_range: tuple[float, float] = (0.0, 1.0)
) -> list:
    """The per-image augmentation layers of ``kinds`` (geometric, then RandAugment, whose
    colour operations need the pixels' ``value_range``); mixing is done by ``mix_batches``."""
    import keras

    check_augmentations(kinds)
    table = {
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=seed),
        "rotation": lambda: keras.layers.RandomRotation(ROTATION, fill_mode="constant", seed=seed),
        "zoom": lambda: keras.layers.RandomZoom(ZOOM, fill_mode="constant", seed=seed),
        "translation": lambda: keras.layers.RandomTranslation(
            TRANSLATION, TRANSLATION, fill_mode="constant", seed=seed
        ),
        "randaugment": lambda: keras.layers.RandAugment(value_range=value_range, seed=seed),
    }
    return [table[k]() for k in AUGMENTATIONS if k in kinds and k in table]


def mixing_layers(strengths: dict[str, float], seed: int) -> list:
    """Keras's MixUp and CutMix layers of ``strengths`` (the Beta(alpha, alpha) parameter of
    each kind), for ``mix_batches``."""
    import keras

    from cnnkeras import _keras_internals

    layers = []
    if strengths.get("mixup"):
        layers.append(keras.layers.MixUp(alpha=strengths["mixup"], seed=seed))
    if strengths.get("cutmix"):
        layers.append(_keras_internals.pixel_counted_cutmix(strengths["cutmix"], seed))
    return layers


def mix_batches(
    ds: tf.data.Dataset, layers: Sequence, seed: int, epoch: int | tf.Tensor = 0
) -> tf.data.Dataset:
    """MixUp and CutMix (``mixing_layers``) on batches of (images, one-hot labels, extra):
    each image is mixed with another of its batch and its label by the same weight, so labels
    stay distributions that sum to one. With both, each batch gets one of them at random
    (timm's ``switch_prob`` 0.5). The draws of a batch are a function of (seed, epoch, step)."""
    if not layers:
        return ds

    def mixed(layer, key, x, y):
        with _keyed([layer], key):
            out = layer({"images": x, "labels": y}, training=True)
        return out["images"], tf.cast(out["labels"], y.dtype)

    def mix(key, x, y, extra):
        if len(layers) == 1:
            return (*mixed(layers[0], key, x, y), extra)
        coin = tf.random.stateless_uniform((), tf.random.experimental.stateless_fold_in(key, 0))
        x, y = tf.cond(
            coin < 0.5, lambda: mixed(layers[0], key, x, y), lambda: mixed(layers[1], key, x, y)
        )
        return x, y, extra

    return _per_step(ds, seed, epoch, 1, mix)


def _training_batches(
    source, seed: int, epoch, *, batch_size, drop_remainder, layers, mixers, num_classes
) -> tf.data.Dataset:
    """One epoch of training batches from ``source`` (model inputs in this epoch's order):
    batched, augmented, labels one-hot (with ``num_classes``), mixed; every draw a function
    of (seed, epoch, step)."""
    ds = source.batch(batch_size, drop_remainder=drop_remainder)
    if layers:

        def augment(key, x, y, pos):
            with _keyed(layers, key):
                for layer in layers:
                    x = layer(x, training=True)
            return x, y, pos

        ds = _per_step(ds, seed, epoch, 0, augment)
    if num_classes:
        ds = ds.map(lambda x, y, pos: (x, tf.one_hot(y, num_classes), pos))
    return mix_batches(ds, mixers, seed, epoch)


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
    cache: str = "auto",
    cache_dir: str | Path | None = None,
    cache_budget_mb: float = CACHE_BUDGET_MB,
    tally: DecodeTally | None = None,
    positions: bool = False,
    sample_weights: bool = False,
    repeat: bool = False,
    epoch: int | None = None,
    mix: dict[str, float] | None = None,
    drop_remainder: bool = False,
    pad_to: int = 0,
) -> tf.data.Dataset:
    """Batches of (float32 images, one-hot labels); shuffled and augmented when training.

    ``cache``: 'memory' keeps the decoded split in memory after the first pass, 'disk' in a
    file under ``cache_dir``, 'none' decodes every epoch, 'auto' is 'memory' when the split
    fits ``cache_budget_mb``. ``positions`` adds each image's position in the split as a
    third element (images that failed to decode are missing from the batches);
    ``sample_weights`` adds a weight instead, 0 for the blanks that stand in for them (for
    validation inside ``model.fit``, which needs the number of steps known). ``repeat``
    runs the epochs on forever, for ``model.fit(steps_per_epoch=...)``: Keras then keeps one
    iterator, and the batches it has prefetched, across epochs instead of starting the
    pipeline again each epoch (BENCHMARKS.md, "Epoch size"). ``mix``: the strength of
    each of 'mixup' and 'cutmix' in ``augment`` (default ``MIX_STRENGTHS``).
    ``drop_remainder`` leaves out each pass's last, partial batch; ``pad_to`` (with
    ``sample_weights``) pads each pass to this many images with blanks of weight 0.

    Training: the order, augmentation and mixing of an epoch are a function of (``seed``,
    epoch number, step), so a resumed run sees what it would have seen without the stop.
    ``epoch``: the number of the first epoch (default 0 with ``repeat``; without it, each
    pass over the dataset draws a new number, as a reshuffling pipeline would)."""
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    value_range = (prep.offset, prep.offset + 255.0 * prep.scale)
    layers = augmentation_layers(augment, seed, value_range) if training and augment else []
    strengths = {k: (mix or {}).get(k, MIX_STRENGTHS[k]) for k in MIXING if k in augment}
    if training and strengths and not one_hot:
        raise UserError("mixup and cutmix mix labels: they need one_hot=True")
    mixers = mixing_layers(strengths, seed) if training else []
    mode = resolve_cache(cache, len(split) * prep.image_bytes, cache_budget_mb)
    if mode == "disk" and cache_dir is None:
        raise UserError("cache='disk' needs a cache_dir")
    one_pass = functools.partial(
        _one_pass,
        split,
        prep,
        tally=tally,
        refill=training,
        blanks=max(len(split), pad_to) if sample_weights else 0,
    )
    if training:
        ds = _training_epochs(
            one_pass,
            functools.partial(_cached, mode=mode, cache_dir=cache_dir, split=split, prep=prep),
            len(split),
            mode=mode,
            seed=seed,
            epoch=epoch,
            repeat=repeat,
            batches=functools.partial(
                _training_batches,
                batch_size=batch_size,
                drop_remainder=drop_remainder,
                layers=layers,
                mixers=mixers,
                num_classes=num_classes if one_hot else 0,
            ),
            batch_size=batch_size,
            drop_remainder=drop_remainder,
        )
    else:
        ds = _cached(one_pass(None), mode, cache_dir, split, prep)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if one_hot:
            ds = ds.map(lambda x, y, pos: (x, tf.one_hot(y, num_classes), pos))
        if repeat:
            ds = ds.repeat()
    if sample_weights:
        ds = ds.map(lambda x, y, pos: (x, y, tf.cast(pos >= 0, tf.float32)))
    elif not positions:
        ds = ds.map(lambda x, y, pos: (x, y))
    return ds.prefetch(tf.data.AUTOTUNE)


def _one_pass(
    split: Split,
    prep: Preprocessing,
    order_seed,
    *,
    tally: DecodeTally | None,
    refill: bool,
    blanks: int,
) -> tf.data.Dataset:
    """One pass of (model input, label, position), shuffled before decoding with
    ``order_seed`` (None: in order). ``refill``: a broken file's place goes to the next
    image; ``blanks``: the pass is padded to this many with blank images of position -1."""
    n = len(split)
    ds = _positions(split, order_seed)
    if split.images is None:  # decoded from files or records, some of which may be broken
        ds = ds.ignore_errors()
    if tally is not None:

        def mark(image, label, pos):
            tally.mark(pos)
            return image, label, pos

        ds = ds.map(mark)
    if split.images is None and refill:
        # a broken file's place in the epoch goes to the next image (from the next pass),
        # so that every epoch has its known number of steps and no batch is short
        ds = ds.repeat().take(n).apply(tf.data.experimental.assert_cardinality(n))
    ds = ds.map(
        lambda x, y, pos: (_to_model_input(x, prep), y, pos),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if blanks and (split.images is None or blanks > n):
        # a broken file's place goes to a blank image of weight 0 (as do the places
        # padding adds): the epoch keeps its known number of steps and accuracy counts
        # only real images (the loss is averaged over all)
        blank = (
            tf.zeros(prep.input_shape),
            tf.constant(0, tf.int64),
            tf.constant(-1, tf.int64),
        )
        ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat()).take(blanks)
        ds = ds.apply(tf.data.experimental.assert_cardinality(blanks))
    return ds


def _cached(
    ds: tf.data.Dataset, mode: str, cache_dir: str | Path | None, split: Split, prep: Preprocessing
) -> tf.data.Dataset:
    """``ds`` kept after its first pass: in memory, in a file under ``cache_dir``, or not."""
    if mode == "memory":
        return ds.cache()
    if mode == "disk":
        prefix = cache_file(cache_dir, split, prep)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        _clear_unfinished(prefix)
        return ds.cache(str(prefix))
    return ds


def _training_epochs(
    one_pass,
    cached,
    n: int,
    *,
    mode: str,
    seed: int,
    epoch: int | None,
    repeat: bool,
    batches,
    batch_size: int,
    drop_remainder: bool,
) -> tf.data.Dataset:
    """The training batches of one epoch, or of every epoch from ``epoch`` on (``repeat``),
    each epoch's order a function of the seed and its number. Decoded once (memory, disk:
    the disk cache's one order is shuffled before decoding) or every epoch in that epoch's
    order (none)."""
    once = cached(one_pass(seed if mode == "disk" else None)) if mode != "none" else None

    def one_epoch(number):
        order = tf.random.stateless_uniform(  # a scalar seed of the whole key
            (), random_key(seed, number), minval=None, maxval=None, dtype=tf.int64
        )
        with _graph_seed_aside():
            if once is None:
                source = one_pass(order)
            else:  # cached: shuffled whole (memory), or mixed again locally (disk)
                buffer = n if mode == "memory" else min(n, SHUFFLE_RECORDS)
                source = once.shuffle(buffer, order)
        return batches(source, seed, number)

    if repeat:
        numbers = tf.data.Dataset.counter(epoch or 0)
    elif epoch is not None:
        numbers = tf.data.Dataset.from_tensors(tf.constant(epoch, tf.int64))
    else:
        numbers = tf.data.Dataset.random(seed, rerandomize_each_iteration=True).take(1)
    # built in Python (no AutoGraph): the epoch's own map functions are converted anyway
    ds = numbers.flat_map(tf.autograph.experimental.do_not_convert(one_epoch))
    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    known = tf.data.INFINITE_CARDINALITY if repeat else steps  # flat_map cannot know it
    return ds.apply(tf.data.experimental.assert_cardinality(known))


class SplitImages:
    """The preprocessed images of a split, decoded one at a time when indexed: a report shows
    a few of them without holding the split in memory. A file is read by one function traced
    once (a pipeline built for each image cost a quarter of a second, most of a small run's
    report); what it returns is what the pipeline gives."""

    def __init__(self, split: Split, prep: Preprocessing):
        self.split, self.prep = split, prep
        self._load_file = None

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> np.ndarray:
        split, prep = self.split, self.prep
        if split.images is not None:
            return _to_model_input(tf.convert_to_tensor(split.images[i]), prep).numpy()
        if split.paths is not None:
            if self._load_file is None:

                @tf.function(input_signature=[tf.TensorSpec((), tf.string), _ORIENTATION])
                def load_file(path, orientation):
                    image = upright(_decode(tf.io.read_file(path)), orientation)
                    return _to_model_input(image, prep)

                self._load_file = load_file
            turned = 1 if split.orientation is None else int(split.orientation[i])
            try:
                return self._load_file(os.fsencode(split.paths[i]), np.uint8(turned)).numpy()
            except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
                return np.zeros(prep.input_shape, np.float32)  # the file broke since it was read
        one = split.subset(np.array([i]))  # a tfds record: found by reading its split
        ds = make_pipeline(one, prep, 1, batch_size=1, one_hot=False, cache="none")
        for x, _ in ds:
            return x.numpy()[0]
        return np.zeros(prep.input_shape, np.float32)


def raw_images(split: Split) -> list[np.ndarray]:
    """The split's images as decoded uint8 pixels, unresized (files that fail are left out)."""
    ds = _positions(split, None)
    if split.images is None:
        ds = ds.ignore_errors()
    return [image for image, _, _ in ds.as_numpy_iterator()]


def preprocess_images(images: Sequence[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """Model input for a list of uint8 images of any size and channel count."""
    out = []
    for image in images:
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        out.append(_to_model_input(tf.convert_to_tensor(image, tf.uint8), prep).numpy())
    return np.stack(out)
