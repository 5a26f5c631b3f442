"""The lecture's calculators: convolution output size, feature maps, separable-conv cost,
receptive fields and EfficientNet compound scaling. Each returns a JSON-ready dict whose
answers are checked against what Keras itself computes where Keras has an answer.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkeras.errors import UserError


def _tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding: output ceil(W/S), the odd pixel of padding at the end."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _resolve_padding(padding: str | int, size: int, kernel: int, stride: int) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return _tf_same_padding(size, kernel, stride)
    try:
        p = int(padding)
    except (TypeError, ValueError):
        raise UserError(f"padding must be a number, 'same' or 'valid', got {padding!r}") from None
    if p < 0:
        raise UserError(f"padding must be >= 0, got {p}")
    return p, p


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise UserError(f"--{key.replace('_', '-')} must be a positive integer, got {value}")


def _keras_conv_size(size: int, kernel: int, stride: int, padding: str | int) -> int:
    """What a Keras Conv2D produces (numeric padding = ZeroPadding2D, then 'valid')."""
    from keras import layers

    if padding in ("same", "valid"):
        conv = layers.Conv2D(1, kernel, strides=stride, padding=padding)
        return conv.compute_output_shape((1, size, size, 1))[1]
    padded = layers.ZeroPadding2D(int(padding)).compute_output_shape((1, size, size, 1))
    return layers.Conv2D(1, kernel, strides=stride).compute_output_shape(padded)[1]


def conv_output(size: int, kernel: int, stride: int = 1, padding: str | int = 0) -> dict:
    """Output size by (W - F + 2P)/S + 1, with what Keras does when that is no integer."""
    _check_positive(input=size, kernel=kernel, stride=stride)
    before, after = _resolve_padding(padding, size, kernel, stride)
    padded = size + before + after
    if kernel > padded:
        raise UserError(
            f"the {kernel}x{kernel} kernel is larger than the padded {padded}x{padded} input; "
            "use a smaller kernel or more padding"
        )
    exact = (size - kernel + before + after) / stride + 1
    out = math.floor(exact)
    keras_out = _keras_conv_size(size, kernel, stride, padding)
    result = {
        "input": size,
        "kernel": kernel,
        "stride": stride,
        "padding": padding if padding in ("same", "valid") else int(padding),
        "padding_before": before,
        "padding_after": after,
        "formula": f"({size} - {kernel} + {before + after}) / {stride} + 1 = {exact:g}",
        "exact": exact,
        "output": out,
        "is_integer": exact.is_integer(),
        "keras_output": keras_out,
        "agrees_with_keras": keras_out == out,
        "same_padding_stride1": (kernel - 1) / 2,
    }
    if not exact.is_integer():
        dropped = (size - kernel + before + after) % stride
        result["note"] = (
            f"{exact:g} is not an integer: Keras floors it to {out}; the last {dropped} "
            f"row(s)/column(s) of the padded input are never covered by the kernel"
        )
    return result


def parse_matrix(text: str, what: str) -> np.ndarray:
    """'1 2 3; 4 5 6' -> a 2x3 array; rows separated by ';', numbers by spaces or commas."""
    try:
        rows = [[float(v) for v in row.replace(",", " ").split()] for row in text.split(";")]
    except ValueError:
        raise UserError(f"`{what}` must hold numbers like '1 2; 3 4', got {text!r}") from None
    rows = [row for row in rows if row]
    if not rows or len({len(row) for row in rows}) != 1:
        raise UserError(f"`{what}` rows must all have the same number of values: {text!r}")
    return np.array(rows, dtype=np.float64)


def conv_feature_map(
    image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: str | int = 0
) -> dict:
    """Slide the filter over the image step by step (cross-correlation, as Conv2D does)."""
    _check_positive(stride=stride)
    kh, kw = kernel.shape
    top, bottom = _resolve_padding(padding, image.shape[0], kh, stride)
    left, right = _resolve_padding(padding, image.shape[1], kw, stride)
    padded = np.pad(image, ((top, bottom), (left, right)))
    if kh > padded.shape[0] or kw > padded.shape[1]:
        raise UserError(f"the {kh}x{kw} filter is larger than the padded {padded.shape} image")
    out_h = (padded.shape[0] - kh) // stride + 1
    out_w = (padded.shape[1] - kw) // stride + 1
    fmap = np.zeros((out_h, out_w))
    steps = []
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[i * stride : i * stride + kh, j * stride : j * stride + kw]
            fmap[i, j] = float((patch * kernel).sum())
            terms = " + ".join(
                f"{a:g}*{b:g}" for a, b in zip(patch.ravel(), kernel.ravel(), strict=True)
            )
            steps.append({"row": i, "col": j, "sum": terms, "value": fmap[i, j]})
    keras_map = _keras_feature_map(padded, kernel, stride)
    return {
        "image": image.tolist(),
        "filter": kernel.tolist(),
        "padded_image": padded.tolist(),
        "stride": stride,
        "feature_map": fmap.tolist(),
        "steps": steps,
        "keras_feature_map": keras_map.tolist(),
        "agrees_with_keras": bool(np.allclose(fmap, keras_map, rtol=1e-5, atol=1e-4)),
    }


def _keras_feature_map(padded: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    import keras

    conv = keras.layers.Conv2D(1, kernel.shape, strides=stride, use_bias=False)
    conv.build((1, *padded.shape, 1))
    conv.set_weights([kernel.reshape(*kernel.shape, 1, 1).astype("float32")])
    out = conv(padded.reshape(1, *padded.shape, 1).astype("float32"))
    return np.asarray(keras.ops.convert_to_numpy(out))[0, :, :, 0].astype(np.float64)


def separable_cost(size: int, kernel: int, in_channels: int, out_channels: int) -> dict:
    """Standard conv against depthwise + pointwise (MobileNet, Howard et al. 2017, Sec. 3.1)."""
    _check_positive(input=size, kernel=kernel, in_channels=in_channels, out_channels=out_channels)
    positions = size * size  # stride 1, 'same' padding
    std_params = kernel * kernel * in_channels * out_channels
    dw_params = kernel * kernel * in_channels
    pw_params = in_channels * out_channels
    std_macs = positions * std_params
    sep_macs = positions * (dw_params + pw_params)
    return {
        "input": size,
        "kernel": kernel,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "standard": {"params": std_params, "macs": std_macs},
        "depthwise": {"params": dw_params, "macs": positions * dw_params},
        "pointwise": {"params": pw_params, "macs": positions * pw_params},
        "separable": {"params": dw_params + pw_params, "macs": sep_macs},
        "ratio": sep_macs / std_macs,
        "ratio_formula": f"1/N + 1/F^2 = 1/{out_channels} + 1/{kernel * kernel}",
        "speedup": std_macs / sep_macs,
    }


def receptive_field(kernel: int = 3, layers: int = 3, channels: int = 64) -> dict:
    """Why VGG stacks 3x3 convs: n of them see 1 + n(F-1) pixels with fewer weights."""
    _check_positive(kernel=kernel, layers=layers, channels=channels)
    rows = []
    for n in range(1, layers + 1):
        field = 1 + n * (kernel - 1)
        stack = n * kernel * kernel * channels * channels
        single = field * field * channels * channels
        rows.append(
            {
                "layers": n,
                "receptive_field": field,
                "stack_params": stack,
                "single_conv": f"{field}x{field}",
                "single_params": single,
                "saving": 1 - stack / single,
                "nonlinearities": n,
            }
        )
    return {"kernel": kernel, "channels": channels, "rows": rows}


def compound_scaling(phi: float | None = None) -> dict:
    """EfficientNet's rule, its FLOPs constraint, and the published B0..B7 grid."""
    from cnnkeras.models.efficientnet import ALPHA, BETA, EFFICIENTNET_PUBLISHED, GAMMA

    product = ALPHA * BETA**2 * GAMMA**2
    table = [
        {
            "model": f"efficientnet_b{i}",
            "phi": i,
            "width": w,
            "depth": d,
            "resolution": r,
            "dropout": p,
            "rule_width": round(BETA**i, 3),
            "rule_depth": round(ALPHA**i, 3),
            "rule_resolution": round(224 * GAMMA**i),
        }
        for i, (w, d, r, p) in enumerate(EFFICIENTNET_PUBLISHED)
    ]
    result = {
        "alpha": ALPHA,
        "beta": BETA,
        "gamma": GAMMA,
        "alpha_beta2_gamma2": product,
        "flops_constraint_holds": abs(product - 2) < 0.1,
        "table": table,
    }
    if phi is not None:
        if phi < 0:
            raise UserError(f"`phi` must be >= 0, got {phi}")
        result["phi"] = phi
        result["depth"] = ALPHA**phi
        result["width"] = BETA**phi
        result["resolution"] = round(224 * GAMMA**phi)
        result["flops_factor"] = product**phi
    return result


# ---------------------------------------------------------------- the text the CLI prints


def conv_output_text(r: dict) -> str:
    """A ``conv_output`` result as the lecture writes it."""
    lines = [f"output size = (W - F + 2P) / S + 1 = {r['formula']}"]
    if "note" in r:
        lines.append(r["note"])
    lines.append(f"output: {r['output']}x{r['output']} (Keras Conv2D: {r['keras_output']})")
    p = r["same_padding_stride1"]
    keep = f"P = (F - 1) / 2 = {p:g}" if p.is_integer() else f"{p:g} (an even kernel pads unevenly)"
    lines.append(f"padding that keeps the size at stride 1: {keep}")
    return "\n".join(lines)


def conv_feature_map_text(r: dict) -> str:
    """A ``conv_feature_map`` result: each output value as its sum, then the map."""
    lines = [f"out[{s['row']}][{s['col']}] = {s['sum']} = {s['value']:g}" for s in r["steps"]]
    lines.append("feature map:")
    lines += ["  " + " ".join(f"{v:8g}" for v in row) for row in r["feature_map"]]
    lines.append(f"Keras Conv2D gives the same map: {r['agrees_with_keras']}")
    return "\n".join(lines)


def separable_cost_text(r: dict) -> str:
    """A ``separable_cost`` result: both costs and their ratio."""
    w, f, m, n = r["input"], r["kernel"], r["in_channels"], r["out_channels"]
    return "\n".join(
        [
            f"standard {f}x{f} conv, {m}->{n} channels on {w}x{w}:",
            f"  params {r['standard']['params']:,}, MACs {r['standard']['macs']:,}",
            f"depthwise {f}x{f} ({m} filters) + pointwise 1x1 ({m}->{n}):",
            f"  params {r['separable']['params']:,}, MACs {r['separable']['macs']:,}",
            f"ratio {r['ratio']:.4f} = {r['ratio_formula']}: {r['speedup']:.1f}x fewer MACs",
        ]
    )


def receptive_field_text(r: dict) -> str:
    """A ``receptive_field`` result as a table of stacks against one large conv."""
    k, c = r["kernel"], r["channels"]
    lines = [
        f"stacks of {k}x{k} convs, {c} channels in and out:",
        f"{'layers':>6}  {'sees':>6}  {'stack params':>14}  {'one conv':>9}  "
        f"{'params':>14}  saving",
    ]
    for row in r["rows"]:
        lines.append(
            f"{row['layers']:>6}  {row['receptive_field']:>4}px  {row['stack_params']:>14,}  "
            f"{row['single_conv']:>9}  {row['single_params']:>14,}  {row['saving']:.0%}"
        )
    lines.append("and each extra layer adds a non-linearity (Simonyan & Zisserman 2015, Sec. 2.3)")
    return "\n".join(lines)


def compound_scaling_text(r: dict) -> str:
    """A ``compound_scaling`` result: the rule, its FLOPs constraint and the B0..B7 grid."""
    lines = [
        f"depth d = {r['alpha']}^phi, width w = {r['beta']}^phi, resolution r = {r['gamma']}^phi",
        f"alpha * beta^2 * gamma^2 = {r['alpha_beta2_gamma2']:.4f} ~ 2: "
        "each +1 of phi roughly doubles the FLOPs",
    ]
    if "phi" in r:
        lines.append(
            f"phi={r['phi']:g}: depth x{r['depth']:.3f}, width x{r['width']:.3f}, "
            f"resolution {r['resolution']}, FLOPs x{r['flops_factor']:.2f}"
        )
    lines.append(f"{'model':<17}{'width':>6}{'depth':>6}{'res':>5}{'dropout':>8}   rule: w, d, r")
    for t in r["table"]:
        lines.append(
            f"{t['model']:<17}{t['width']:>6}{t['depth']:>6}{t['resolution']:>5}{t['dropout']:>8}"
            f"   {t['rule_width']}, {t['rule_depth']}, {t['rule_resolution']}"
        )
    return "\n".join(lines)
