"""The PyTorch peer of ``cnnkeras bench train`` for ResNet-18, VGG-16, MobileNet v2 and
EfficientNet-B0: the same networks (trainable parameters checked equal to the cnnkeras
builders'; torchvision's definitions, written out because torchvision's wheels for torch's
CPU build are not on PyPI), Adam, cross-entropy, an eager loop on one synthetic batch,
median of timed rounds after a warm-up round. Not part of the package; torch is no
dependency of cnnkeras.

    pip install torch==2.13.0
    python tests/benchmarks/torch_zoo.py --arch resnet18 --image-size 64 --steps 8 \
        [--channels-last] [--bf16] --json

``--bf16``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` around the forward pass and the
loss, PyTorch's mixed precision (float32 weights and optimizer).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, k: int, s: int = 1, groups: int = 1, act=nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, act=None))
        shape_changes = stride != 1 or cin != cout
        self.short = _conv_bn(cin, cout, 1, stride, act=None) if shape_changes else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def resnet18(num_classes: int) -> nn.Module:
    blocks, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        blocks += [_Basic(cin, cout, stride), _Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(
        _conv_bn(3, 64, 7, 2),
        nn.MaxPool2d(3, 2, 1),
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    )


def vgg16(num_classes: int, image_size: int) -> nn.Module:
    # cnnkeras's (keras.applications') VGG-16: flatten after the last pool, two dense 4096
    layers, cin = [], 3
    for width, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
            cin = width
        layers.append(nn.MaxPool2d(2))
    side = image_size // 32
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(512 * side * side, 4096),
        nn.ReLU(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, num_classes),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, k=3, act=nn.ReLU6, se=0.0, drop=0.0):
        super().__init__()
        mid = cin * expand
        layers = [_conv_bn(cin, mid, 1, act=act)] if expand != 1 else []
        layers.append(_conv_bn(mid, mid, k, stride, groups=mid, act=act))
        if se:
            squeeze = max(1, int(cin * se))
            layers.append(_SqueezeExcite(mid, squeeze))
        layers.append(_conv_bn(mid, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x):
        y = self.body(x)
        if not self.residual:
            return y
        if self.training and self.drop:  # stochastic depth, as Keras's drop_connect
            keep = torch.rand(y.shape[0], 1, 1, 1, device=y.device) >= self.drop
            y = y * keep / (1 - self.drop)
        return x + y


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(torch.nn.functional.silu(self.reduce(s))))


def _inverted_net(blocks: list, act, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """MobileNet v2's and EfficientNet's frame: a 3x3 stride-2 stem of 32 channels, the
    blocks (ending at 320 channels), a 1x1 convolution to 1280, pooling, the classifier."""
    return nn.Sequential(
        _conv_bn(3, 32, 3, 2, act=act),
        *blocks,
        _conv_bn(320, 1280, 1, act=act),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        *([nn.Dropout(dropout)] if dropout else []),
        nn.Linear(1280, num_classes),
    )


def mobilenet_v2(num_classes: int) -> nn.Module:
    stages = (  # expand, out channels, repeats, stride
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )
    blocks, cin = [], 32
    for t, c, n, s in stages:
        for i in range(n):
            blocks.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    return _inverted_net(blocks, nn.ReLU6, num_classes)


def efficientnet_b0(num_classes: int) -> nn.Module:
    stages = (  # expand, kernel, stride, out channels, repeats
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    )
    total = sum(s[-1] for s in stages)
    blocks, cin = [], 32
    for expand, k, stride, cout, repeats in stages:
        for i in range(repeats):
            drop = 0.2 * len(blocks) / total
            s = stride if i == 0 else 1
            blocks.append(_InvertedResidual(cin, cout, s, expand, k, nn.SiLU, 0.25, drop))
            cin = cout
    return _inverted_net(blocks, nn.SiLU, num_classes, dropout=0.2)


# arch: (builder of (num_classes, image_size), trainable parameters of cnnkeras's, 10 classes)
ZOO: dict[str, tuple[Callable[[int, int], nn.Module], int]] = {
    "resnet18": (lambda n, size: resnet18(n), 11_181_642),
    "vgg16": (vgg16, 39_929_674),  # at 64x64
    "mobilenet_v2": (lambda n, size: mobilenet_v2(n), 2_236_682),
    "efficientnet_b0": (lambda n, size: efficientnet_b0(n), 4_020_358),
}


def bench(arch: str, image_size: int, batch_size: int, steps: int, repeats: int, **how) -> dict:
    """Images per second of the eager training loop; ``how``: channels_last, bf16."""
    torch.manual_seed(0)
    build, params = ZOO[arch]
    model = build(10, image_size)
    got = sum(p.numel() for p in model.parameters())
    if arch != "vgg16" or image_size == 64:
        assert got == params, f"{arch}: {got:,} parameters, cnnkeras's has {params:,}"
    fmt = torch.channels_last if how.get("channels_last") else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch_size, 3, image_size, image_size).to(memory_format=fmt)
    y = torch.randint(0, 10, (batch_size,))
    times = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(how.get("bf16"))):
                loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        if repeat:  # the first round warms up
            times.append(time.perf_counter() - start)
    return {
        "framework": f"torch {torch.__version__} eager",
        "arch": arch,
        "threads": torch.get_num_threads(),
        "parameters": got,
        **how,
        "images_per_sec": batch_size * steps / statistics.median(times),
        "images_per_sec_runs": [batch_size * steps / t for t in times],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", choices=sorted(ZOO), default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    how = {"channels_last": a.channels_last, "bf16": a.bf16}
    result = bench(a.arch, a.image_size, a.batch_size, a.steps, a.repeats, **how)
    print(json.dumps(result) if a.json else result)


if __name__ == "__main__":
    main()
