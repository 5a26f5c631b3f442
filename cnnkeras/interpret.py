"""Look inside a trained CNN: Grad-CAM, feature maps, first-layer filters and receptive fields.

Works on every model of the zoo and on the transfer models of ``finetune``, whose base is a
nested Keras model: a layer inside it is named ``base/layer``. Layer choices follow the
lecture: feature maps shrink and deepen stage by stage; Grad-CAM (Selvaraju et al. 2017)
weighs the last map that still has a spatial extent by the gradient of the class score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkeras.errors import UserError

_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
MIN_CAM_SIDE = 2  # a 1x1 map weighs nothing against anything: no heatmap


@dataclass(frozen=True)
class LayerView:
    """A layer whose output is a feature map: where it is (``path``, ``base/layer`` inside
    a nested model), its output shape and its receptive field on the input, in pixels."""

    path: str
    shape: tuple[int, int, int]
    receptive_field: int
    is_conv: bool


# ---------------------------------------------------------------- the layers of a model


def _inbound(layer) -> list:
    """The tensors a layer was called on (a functional model's layers are called once)."""
    inputs = layer.input
    return list(inputs) if isinstance(inputs, list | tuple) else [inputs]


def _walk(model: keras.Model, start: tuple[int, int], prefix: str = ""):
    """(each layer with a 4-D output in graph order, the (r, j) of the model's output).

    ``r`` is the receptive field, ``j`` the jump (input pixels between neighbouring outputs):
    r' = r + (k - 1) j and j' = j s for a kernel k and stride s. A layer with several inputs
    (Add, Concatenate) sees the widest of them. A nested model (the base of a transfer model)
    is walked inside, fed by the layer before it: transfer models are chains."""
    fields = {id(t): start for t in model.inputs}
    views: list[LayerView] = []
    last = start
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            inner, (r, j) = _walk(layer, last, f"{prefix}{layer.name}/")
            views += inner
        else:
            seen = [fields.get(id(t)) for t in _inbound(layer)]
            r, j = max(seen) if all(seen) else last
            k, s = _kernel_stride(layer)
            r, j = r + (k - 1) * j, j * s
            shape = tuple(layer.output.shape[1:])
            if len(shape) == 3 and not isinstance(layer, keras.layers.ZeroPadding2D):
                views.append(
                    LayerView(f"{prefix}{layer.name}", shape, int(r), isinstance(layer, _CONVS))
                )
            fields[id(layer.output)] = (r, j)
        last = (r, j)
    return views, fields.get(id(model.outputs[0]), last)


def _kernel_stride(layer) -> tuple[int, int]:
    if isinstance(layer, _CONVS):
        k = layer.kernel_size[0]
        d = layer.dilation_rate[0] if hasattr(layer, "dilation_rate") else 1
        return d * (k - 1) + 1, layer.strides[0]
    if isinstance(layer, _POOLS):
        return layer.pool_size[0], layer.strides[0]
    return 1, 1


def feature_layers(model: keras.Model) -> list[LayerView]:
    """Every layer of ``model`` (nested bases included) whose output is a feature map."""
    return _walk(model, (1, 1))[0]


def receptive_fields(model: keras.Model) -> dict[str, int]:
    """Layer path -> receptive field in input pixels, from the model's own kernels and
    strides (stacked 3x3 convs see 5, 7, ... pixels: the lecture's VGG argument)."""
    return {v.path: v.receptive_field for v in feature_layers(model)}


def _resolve(model: keras.Model, path: str):
    """(the model that holds it: ``model`` or a nested base, the layer) of a layer path whose
    output is a feature map."""
    views = feature_layers(model)
    if path not in {v.path for v in views}:
        convs = ", ".join(v.path for v in views if v.is_conv)
        raise UserError(f"no layer {path!r} with a feature map; convolutional layers: {convs}")
    return _layer_at(model, path)


def _layer_at(model: keras.Model, path: str):
    holder = model
    *bases, name = path.split("/")
    for base in bases:
        holder = holder.get_layer(base)
    return holder, holder.get_layer(name)


def _probe(model: keras.Model, paths: list[str]):
    """A function from a batch to the outputs of the layers at ``paths`` and the class
    scores before softmax (Grad-CAM's y^c), computed in one forward pass."""
    layers = [_resolve(model, p) for p in paths]
    last = model.layers[-1]
    softmax = getattr(last, "activation", None) is keras.activations.softmax
    head = last if softmax and isinstance(last, keras.layers.Dense) else None
    holders = {id(holder): holder for holder, _ in layers}
    if len(holders) > 1:
        raise UserError("choose layers of one model at a time: all inside a base or none")
    holder = next(iter(holders.values()))
    if holder is model:
        scores = last.input if softmax else model.output
        probe = keras.Model(model.inputs, [*(layer.output for _, layer in layers), scores])

        def run(x):
            *maps, pre = probe(x, training=False)
            return maps, _logits(head, pre)

        return run
    # a nested base: the transfer model is a chain, replayed around a probe of the base
    chain = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    before, after = chain[: chain.index(holder)], chain[chain.index(holder) + 1 :]
    if softmax:
        after = after[:-1]
    probe = keras.Model(holder.inputs, [*(layer.output for _, layer in layers), holder.output])

    def run_nested(x):
        for layer in before:
            x = layer(x, training=False)
        *maps, x = probe(x, training=False)
        for layer in after:
            x = layer(x, training=False)
        return maps, _logits(head, x)

    return run_nested


def _logits(head, pre):
    """The scores before the softmax of a Dense head (its input otherwise)."""
    return pre if head is None else keras.ops.matmul(pre, head.kernel) + head.bias


# ---------------------------------------------------------------- the public functions


def _model_and_input(model, image) -> tuple[keras.Model, np.ndarray, np.ndarray | None]:
    """(Keras model, model input batch of one, the raw image for overlays or None)."""
    if isinstance(model, str | Path):
        from cnnkeras.data import preprocess_images
        from cnnkeras.saved import load_run_model

        loaded = load_run_model(model)
        raw = np.asarray(image)
        return loaded.model, preprocess_images([raw], loaded.prep), raw
    x = np.asarray(image, np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.shape != tuple(model.input_shape[1:]):
        raise UserError(
            f"`image` has shape {x.shape}; the model takes {tuple(model.input_shape[1:])} "
            "(pass the path of a run's model to preprocess raw pixels)"
        )
    return model, x[None], None


def default_cam_layer(model: keras.Model) -> str:
    """The last layer whose output still has a spatial map of at least 2x2."""
    views = [v for v in feature_layers(model) if min(v.shape[:2]) >= MIN_CAM_SIDE]
    if not views:
        raise UserError(f"{model.name} has no feature map of at least 2x2 for Grad-CAM")
    return views[-1].path


def grad_cam(model, image, class_index: int | None = None, layer: str | None = None):
    """Grad-CAM heatmap (H, W) in 0..1 of ``image`` for ``class_index`` (default: the
    predicted class) at ``layer`` (default: ``default_cam_layer``).

    ``model`` is a Keras model (``image`` is then model input, H x W x C) or the path of a
    run's ``.keras`` file (``image`` is raw pixels of any size; the run's preprocessing is
    applied). The heatmap has the height and width of ``image``."""
    keras_model, x, raw = _model_and_input(model, image)
    classes = None if class_index is None else [class_index]
    size = raw.shape[:2] if raw is not None else None
    return grad_cams(keras_model, x, classes, layer, size)[0]


def grad_cams(model: keras.Model, batch, classes=None, layer: str | None = None, size=None):
    """Grad-CAM heatmaps (N, H, W) of a batch of model input in one forward and backward
    pass: for ``classes[i]`` (default: each image's predicted class), resized to ``size``
    (default: the input's height and width) and scaled to 0..1 each."""
    batch = np.asarray(batch, np.float32)
    return _fit_cams(_cam_maps(model, batch, classes, layer), size or batch.shape[1:3])


def _cam_maps(model: keras.Model, batch: np.ndarray, classes, layer: str | None) -> tf.Tensor:
    """Grad-CAM at the resolution of ``layer``'s map, before resizing and scaling."""
    layer = layer or default_cam_layer(model)
    run = _probe(model, [layer])
    x = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        (fmap,), logits = run(x)
        picked = tf.argmax(logits, axis=-1) if classes is None else tf.constant(classes)
        picked = tf.cast(picked, tf.int32)
        count = logits.shape[-1]
        if not bool(tf.reduce_all((picked >= 0) & (picked < count))):
            raise UserError(f"`class_index` must be one of the {count} classes (0..{count - 1})")
        # images are independent (inference mode), so one sum gives each image its gradient
        target = tf.reduce_sum(tf.gather(logits, picked, axis=1, batch_dims=1))
    grads = tape.gradient(target, fmap)
    if grads is None:
        raise UserError(f"no gradient reaches {layer!r} from the class score")
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # alpha_k: pooled gradients
    return tf.nn.relu(tf.reduce_sum(fmap * weights, axis=-1))


def _fit_cams(cams: tf.Tensor, size) -> np.ndarray:
    """Heatmaps resized to ``size`` (bilinear) and scaled to 0..1 each."""
    cams = tf.image.resize(cams[..., None], tuple(size), method="bilinear")[..., 0].numpy()
    top = cams.max(axis=(1, 2), keepdims=True)
    return np.where(top > 0, cams / np.where(top > 0, top, 1), cams).astype(np.float32)


def stage_layers(model: keras.Model) -> list[str]:
    """The last layer of each stage: one per spatial size a feature map passes through."""
    views = feature_layers(model)
    first_conv = next((i for i, v in enumerate(views) if v.is_conv), 0)
    stages: dict[tuple[int, int], str] = {}
    for v in views[first_conv:]:  # what comes before is input scaling, not features
        if v.shape[:2] == (1, 1):  # squeeze-and-excitation and 1x1 heads: no map to see
            continue
        stages[v.shape[:2]] = v.path  # later layers of a stage replace earlier ones
    return list(stages.values())


def feature_maps(model, image, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """Layer path -> its activation maps (h, w, channels) for ``image`` (default: the last
    layer of each stage, ``stage_layers``). ``model`` and ``image`` as in ``grad_cam``."""
    keras_model, x, _ = _model_and_input(model, image)
    layers = list(layers) if layers else stage_layers(keras_model)
    maps, _ = _probe(keras_model, layers)(tf.convert_to_tensor(x))
    return {name: np.asarray(m)[0] for name, m in zip(layers, maps, strict=True)}


def first_conv_filters(model: keras.Model) -> np.ndarray:
    """The kernels (k, k, channels in, filters) of the first convolution with weights."""
    for view in feature_layers(model):
        _, layer = _layer_at(model, view.path)
        # a 1x1 kernel (ImageNet's fixed colour transform, pointwise convs) has no pattern
        if type(layer) is keras.layers.Conv2D and max(layer.kernel_size) > 1:
            return np.asarray(layer.kernel)
    raise UserError(f"{model.name} has no convolution with a kernel larger than 1x1")


# ---------------------------------------------------------------- figures and the command


def _overlay(ax, raw: np.ndarray, cam: np.ndarray, title: str) -> None:
    """The heatmap in jet over the image in grey or colour, as the Keras example shows it."""
    from cnnkeras._figures import show_image

    show_image(ax, raw, title, cmap="gray")
    ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)


def _gradcam_png(raw, cams: list[tuple[str, np.ndarray]]) -> bytes:
    from cnnkeras._figures import plt, png_bytes, show_image

    fig, axes = plt.subplots(1, 1 + len(cams), figsize=(3 * (1 + len(cams)), 3.2), squeeze=False)
    show_image(axes[0, 0], raw, "input", cmap="gray")
    for ax, (title, cam) in zip(axes[0, 1:], cams, strict=True):
        _overlay(ax, raw, cam, title)
    return png_bytes(fig)


def _features_png(maps: dict[str, np.ndarray], views: dict[str, LayerView], n: int = 8) -> bytes:
    """A row per layer: its ``n`` strongest channels, labelled with shape and receptive field."""
    from cnnkeras._figures import plt, png_bytes, row_label, show_image

    fig, axes = plt.subplots(len(maps), n, figsize=(1.6 * n, 1.8 * len(maps)), squeeze=False)
    for row, (name, fmap) in zip(axes, maps.items(), strict=True):
        strongest = np.argsort(fmap.mean(axis=(0, 1)))[::-1][:n]
        for ax in row:
            ax.axis("off")
        for ax, c in zip(row, strongest, strict=False):
            show_image(ax, fmap[..., c], f"ch {c}", cmap="viridis")
        v = views[name]
        shape = "x".join(map(str, v.shape))
        row_label(row[0], f"{name}\n{shape}\nsees {v.receptive_field}px")
    fig.suptitle("feature maps: the strongest channels of each stage", fontsize=10)
    return png_bytes(fig)


def _filters_png(kernel: np.ndarray, n: int = 64) -> bytes:
    from cnnkeras._figures import plt, png_bytes, show_image

    count = min(n, kernel.shape[-1])
    cols = min(8, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in zip(range(count), axes.ravel(), strict=False):
        k = kernel[..., i]
        show_image(ax, k if k.shape[-1] == 3 else k[..., 0], str(i), cmap="gray")
    fig.suptitle(f"first-layer filters ({kernel.shape[0]}x{kernel.shape[1]})", fontsize=10)
    return png_bytes(fig)


def inspect_images(
    model_path: str | Path,
    images: list[str | Path],
    *,
    out: str | Path | None = None,
    top_k: int = 3,
    class_name: str | None = None,
    layer: str | None = None,
    layers: list[str] | None = None,
) -> dict:
    """Predictions, Grad-CAM, feature maps and first-layer filters of a run's model for
    image files, written as PNGs into ``out`` (default: ``inspect/`` beside the model)."""
    from cnnkeras import _io
    from cnnkeras.data import preprocess_images, read_image
    from cnnkeras.saved import load_run_model

    loaded = load_run_model(model_path)
    model = loaded.model
    names = loaded.class_names or [str(i) for i in range(model.output_shape[-1])]
    if top_k < 1:
        raise UserError("`top_k` must be >= 1")
    if class_name is not None and class_name not in names:
        raise UserError(f"class {class_name!r} is not one of the labels: {', '.join(names[:20])}")
    raws = []
    for path in images:
        try:
            raws.append(read_image(path))
        except UserError as err:
            raise UserError(f"{path}: {err}") from None
    cam_layer = layer or default_cam_layer(model)
    chosen = list(layers) if layers else stage_layers(model)
    views = {v.path: v for v in feature_layers(model)}
    for name in [cam_layer, *chosen]:
        _resolve(model, name)
    out = Path(out) if out else Path(model_path).parent / "inspect"
    out.mkdir(parents=True, exist_ok=True)
    filters = out / "filters.png"
    _io.write_bytes(filters, _filters_png(first_conv_filters(model)))
    xs = preprocess_images(raws, loaded.prep)
    extra = names.index(class_name) if class_name is not None else None
    maps, scores, tops, cams = _look(model, xs, chosen, cam_layer, top_k, extra)
    results = []
    for i, (path, raw) in enumerate(zip(images, raws, strict=True)):
        titled = [
            (f"Grad-CAM {names[c]} ({scores[i, c]:.2f})", _fit_cams(cam[None], raw.shape[:2])[0])
            for c, cam in cams[i]
        ]
        fmaps = {name: np.asarray(m)[i] for name, m in zip(chosen, maps, strict=True)}
        top = [{"label": names[c], "score": float(scores[i, c])} for c in tops[i]]
        paths = _write_image_views(out, i, path, raw, titled, fmaps, views)
        results.append({"image": str(path), "top": top, **paths})
    result = {
        "model": str(model_path),
        "out": str(out),
        "cam_layer": cam_layer,
        "filters": str(filters),
        "layers": [
            {
                "name": name,
                "shape": list(views[name].shape),
                "receptive_field": views[name].receptive_field,
            }
            for name in dict.fromkeys([*chosen, cam_layer])
        ],
        "images": results,
    }
    _io.write_json(out / "inspect.json", result)
    return result


def _look(model, xs: np.ndarray, chosen: list[str], cam_layer: str, top_k: int, extra):
    """(feature maps, scores, the top ``top_k`` classes, and for each image its Grad-CAMs as
    (class, map): of its top class, and of class ``extra`` too when given). One forward pass
    for the scores and feature maps of every image, one forward and backward pass for every
    heatmap."""
    maps, _ = _probe(model, chosen)(tf.convert_to_tensor(xs))
    scores = np.asarray(model(xs, training=False))
    tops = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]  # ties in class order
    wanted = [[int(top[0])] for top in tops]
    if extra is not None:
        wanted = [w if w[0] == extra else [*w, extra] for w in wanted]
    pairs = [(i, c) for i, w in enumerate(wanted) for c in w]
    heat = _cam_maps(model, xs[[i for i, _ in pairs]], [c for _, c in pairs], cam_layer)
    cams: list[list] = [[] for _ in range(len(xs))]
    for k, (i, c) in enumerate(pairs):
        cams[i].append((c, heat[k]))
    return maps, scores, tops, cams


def _write_image_views(out: Path, i: int, path, raw, titled, fmaps: dict, views: dict) -> dict:
    """Image ``i``'s Grad-CAM and feature-map PNGs in ``out``; where they are."""
    from cnnkeras import _io

    stem = f"{i:02d}_{Path(path).stem}"
    cam_path, feat_path = out / f"{stem}_gradcam.png", out / f"{stem}_features.png"
    _io.write_bytes(cam_path, _gradcam_png(raw, titled))
    _io.write_bytes(feat_path, _features_png(fmaps, views))
    return {"gradcam": str(cam_path), "features": str(feat_path)}


def inspect_text(result: dict) -> str:
    """An ``inspect_images`` result as ``cnnkeras inspect`` prints it."""
    lines = []
    for r in result["images"]:
        best = ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["top"])
        lines.append(f"{r['image']}: {best}")
    lines.append(f"Grad-CAM at {result['cam_layer']}; feature maps of:")
    for row in result["layers"]:
        shape = "x".join(map(str, row["shape"]))
        lines.append(f"  {row['name']:<32}{shape:>12}  sees {row['receptive_field']}px")
    lines.append(
        f"written to {result['out']}/ (inspect.json, filters.png, *_gradcam.png, *_features.png)"
    )
    return "\n".join(lines)
