"""The one table of figures pinned for every registered model: what our builders give at
the canonical configuration, beside what the reference implementations and papers publish.

``params``, ``trainable`` and ``macs`` are measured by building each model (``cnnkeras models
--measure``); ``tests/test_models.py`` rebuilds them and fails if a builder drifts. Keras
counts BatchNorm's moving mean and variance as (non-trainable) parameters; torchvision does
not, so its figures equal the ``trainable`` column. A model with a ``keras.applications``
counterpart (``ModelInfo.keras_application``) has exactly its parameters (the tests build it
offline to check); the others have the trainable count their source publishes in
``published``. ``paper_macs`` is the paper's multiply-accumulates and how far a counting
convention may move them.
"""

from typing import NamedTuple


class ModelStats(NamedTuple):
    params: int
    trainable: int
    macs: int  # for one image
    published: int | None = None  # trainable parameters as published, without keras.applications
    paper_macs: tuple[float, float] | None = None  # (MACs, relative tolerance)


STATS = {
    "alexnet": ModelStats(62_378_344, 62_378_344, 1_135_256_096, 62_378_344),  # one-tower
    "efficientnet_b0": ModelStats(5_330_571, 5_288_548, 385_814_752, paper_macs=(0.39e9, 0.05)),
    "efficientnet_b1": ModelStats(7_856_239, 7_794_184, 686_802_832),
    "efficientnet_b2": ModelStats(9_177_569, 9_109_994, 993_561_872),
    "efficientnet_b3": ModelStats(12_320_535, 12_233_232, 1_827_141_392),
    "efficientnet_b4": ModelStats(19_466_823, 19_341_616, 4_393_771_024),
    "efficientnet_b5": ModelStats(30_562_527, 30_389_784, 10_266_384_752),
    "efficientnet_b6": ModelStats(43_265_143, 43_040_704, 19_067_593_536),
    "efficientnet_b7": ModelStats(66_658_687, 66_347_960, 37_745_884_192),
    "googlenet": ModelStats(6_998_552, 6_998_552, 1_582_671_872, 6_998_552),
    "lenet5": ModelStats(61_706, 61_706, 416_520, 61_706),  # LeCun et al. 1998 with dense C5
    "mobilenet_v1": ModelStats(4_253_864, 4_231_976, 568_740_352, paper_macs=(569e6, 0.03)),
    "mobilenet_v2": ModelStats(3_538_984, 3_504_872, 300_774_272, paper_macs=(300e6, 0.03)),
    # torchvision's resnet18 and resnet34
    "resnet18": ModelStats(11_699_112, 11_689_512, 1_814_073_344, 11_689_512),
    "resnet34": ModelStats(21_814_696, 21_797_672, 3_663_761_408, 21_797_672),
    # ResNet-50: 3.8G to 4.2G MACs depending on what is counted
    "resnet50": ModelStats(25_636_712, 25_583_592, 3_857_973_248, paper_macs=(4.0e9, 0.05)),
    "resnet101": ModelStats(44_707_176, 44_601_832, 7_570_194_432),
    "resnet152": ModelStats(60_419_944, 60_268_520, 11_282_415_616),
    "vgg16": ModelStats(138_357_544, 138_357_544, 15_470_264_320, paper_macs=(15.5e9, 0.02)),
    "vgg19": ModelStats(143_667_240, 143_667_240, 19_632_062_464),
}
# Paper MACs: Howard et al. 2017 Table 8, Sandler et al. 2018 Table 4, Simonyan & Zisserman
# 2015, He et al. 2016 Table 1, Tan & Le 2019 Table 2.
