"""Every use of Keras's private API in cnnkeras, in one place: what each does, why no public
API does it, and the Keras version it was checked with. ``tests/test_keras_internals.py``
checks each against the installed Keras and names this file when an upgrade changes one; no
other module of cnnkeras touches a private Keras name (the test checks that too).

Keras Tuner's internals live in ``cnnkeras/tuning/_kt.py``, TensorFlow Lite's in
``cnnkeras/export/_repair.py``, on the same terms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import keras

CHECKED_WITH = "3.15.1"  # the keras of requirements.txt these were read against


def producing_layer(tensor) -> keras.layers.Layer:
    """The layer that computed a functional model's tensor (to walk a graph backwards: the
    classifier of ``model.outputs``, the input of a feature map). Keras keeps it only in the
    tensor's ``_keras_history``."""
    return tensor._keras_history.operation


def all_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``layer``, nested models' and composite layers' (RandAugment's)
    too, itself excluded. ``model.layers`` lists only the top level."""
    return list(layer._flatten_layers(include_self=False))


def ema_averages(optimizer: keras.optimizers.Optimizer) -> list:
    """The weight averages an optimizer with ``use_ema`` keeps, one per trainable variable
    (None for one it does not average). Keras's own ``SwapEMAWeights`` reads them the same
    way; it has no public accessor."""
    return optimizer._model_variables_moving_average


def replace_ema_update(optimizer: keras.optimizers.Optimizer, update: Callable) -> None:
    """Make ``update(trainable_variables)`` the optimizer's weight-average step, which Keras
    calls inside its train step after every ``apply`` (so on every step, whatever the steps
    per execution); Keras offers no hook for a decay that changes with the step."""
    optimizer._update_model_variables_moving_average = update


def build_training_state(model: keras.Model, labels=None) -> None:
    """Create a compiled model's optimizer, metric and loss variables now, eagerly. Keras on
    TensorFlow without a strategy creates them inside the first trace of the train function,
    and a tf.function that creates variables is traced twice: MobileNet v2's first ``fit``
    took 47 s, against 31.5 s built first (BENCHMARKS.md). ``_symbolic_build`` is what Keras
    itself runs first under a strategy and on JAX; it builds only what is not built yet.
    ``labels``: labels as the model trains on them (their shape and dtype count; one-hot by
    default)."""
    if keras.backend.backend() != "tensorflow" or (len(model.inputs), len(model.outputs)) != (1, 1):
        return
    (image,), (output,) = model.inputs, model.outputs
    images = keras.KerasTensor(image.shape, image.dtype)
    labels = keras.KerasTensor(output.shape, "float32") if labels is None else labels
    model._symbolic_build(data_batch=(images, labels))


@contextlib.contextmanager
def seed_generator(layers: Sequence[keras.layers.Layer], generator) -> Iterator[None]:
    """While inside: the random layers among ``layers`` (and inside them) draw their
    randomness from ``generator`` instead of their own seed generators. Keras's data layers
    ask ``_get_seed_generator`` for it on each call; a tf.data map function needs a key a
    function of the image's epoch and index, which no public argument gives."""
    inner = [sub for layer in layers for sub in layer._flatten_layers()]
    for layer in inner:
        layer._get_seed_generator = lambda backend=None: generator
    try:
        yield
    finally:
        for layer in inner:
            del layer._get_seed_generator


class LexicographicEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose monitored value is a tuple (a score and its tie-breaker), better
    when greater in tuple order. Keras compares with ``_is_improvement``, which takes numbers
    only; ``mode`` and ``min_delta`` do not apply."""

    def _is_improvement(self, monitor_value, reference_value):
        return reference_value is None or tuple(monitor_value) > tuple(reference_value)


def pixel_counted_cutmix(alpha: float, seed: int) -> keras.layers.Layer:
    """Keras's CutMix with each label weighted by the pixels really pasted: Keras weights it
    by the box's fractional area while pasting whole pixels, off by up to a third on small
    images (timm corrects it the same way, ``correct_lam``). The mask is made in
    ``_generate_batch_mask``, the one place that sees both."""

    class CutMix(keras.layers.CutMix):
        def _generate_batch_mask(self, images_shape, box_corners):
            masks, _ = super()._generate_batch_mask(images_shape, box_corners)
            pasted = self.backend.numpy.mean(
                self.backend.cast(masks, self.compute_dtype), axis=(1, 2, 3)
            )
            return masks, 1.0 - pasted

    return CutMix(factor=alpha, seed=seed)
