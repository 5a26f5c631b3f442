"""The lecture's calculators against values worked by hand, and against Keras itself."""

import numpy as np
import pytest

from cnnkeras import explain
from cnnkeras.errors import UserError


@pytest.mark.parametrize(
    "size, kernel, stride, padding, output, exact",
    [
        (32, 5, 1, 0, 28, 28.0),  # LeNet C1: (32 - 5 + 0)/1 + 1
        (227, 11, 4, 0, 55, 55.0),  # AlexNet conv1: (227 - 11)/4 + 1
        (224, 3, 1, 1, 224, 224.0),  # VGG: P = (F - 1)/2 keeps the size
        (7, 3, 2, 0, 3, 3.0),
        (8, 3, 2, 0, 3, 3.5),  # not an integer: floored
        (224, 7, 2, 3, 112, 112.5),  # ResNet stem: 230 - 7 = 223, /2 = 111.5, + 1
        (5, 2, 1, 0, 4, 4.0),
    ],
)
def test_conv_output_size(size, kernel, stride, padding, output, exact):
    r = explain.conv_output(size, kernel, stride, padding)
    assert r["output"] == output
    assert r["exact"] == exact
    assert r["keras_output"] == output and r["agrees_with_keras"]
    assert r["is_integer"] == exact.is_integer()
    assert ("note" in r) == (not exact.is_integer())


def test_conv_same_and_valid_padding():
    same = explain.conv_output(7, 3, 2, "same")  # ceil(7/2) = 4, TF pads 1 each side
    assert (same["output"], same["padding_before"], same["padding_after"]) == (4, 1, 1)
    even = explain.conv_output(8, 3, 2, "same")  # ceil(8/2) = 4, total pad 1, at the end
    assert (even["output"], even["padding_before"], even["padding_after"]) == (4, 0, 1)
    assert even["agrees_with_keras"]
    valid = explain.conv_output(10, 3, 1, "valid")
    assert valid["output"] == 8 and valid["agrees_with_keras"]


def test_padding_that_keeps_the_size():
    assert explain.conv_output(28, 5, 1, 0)["same_padding_stride1"] == 2
    assert explain.conv_output(28, 4, 1, 0)["same_padding_stride1"] == 1.5


@pytest.mark.parametrize(
    "args, message",
    [
        ((3, 5, 1, 0), "larger than the padded"),
        ((0, 3, 1, 0), "--input"),
        ((8, 3, 0, 0), "--stride"),
        ((8, 3, 1, "half"), "padding must be"),
        ((8, 3, 1, -1), "padding must be >= 0"),
    ],
)
def test_conv_output_errors(args, message):
    with pytest.raises(UserError, match=message):
        explain.conv_output(*args)


def test_feature_map_by_hand():
    image = explain.parse_matrix("1 2 3 0; 0 1 2 3; 3 0 1 2; 2 3 0 1", "image")
    kernel = explain.parse_matrix("2 0 1; 0 1 2; 1 0 2", "filter")
    r = explain.conv_feature_map(image, kernel)
    # Dumoulin & Visin style example, worked by hand:
    # [0,0]: 1*2+2*0+3*1 + 0*0+1*1+2*2 + 3*1+0*0+1*2 = 5+5+5 = 15
    # [0,1]: 2*2+3*0+0*1 + 1*0+2*1+3*2 + 0*1+1*0+2*2 = 4+8+4 = 16
    # [1,0]: 0*2+1*0+2*1 + 3*0+0*1+1*2 + 2*1+3*0+0*2 = 2+2+2 = 6
    # [1,1]: 1*2+2*0+3*1 + 0*0+1*1+2*2 + 3*1+0*0+1*2 = 5+5+5 = 15
    assert r["feature_map"] == [[15, 16], [6, 15]]
    assert r["agrees_with_keras"]
    assert len(r["steps"]) == 4 and r["steps"][1]["value"] == 16


def test_feature_map_with_padding_and_stride():
    image = explain.parse_matrix("1 2; 3 4", "image")
    kernel = explain.parse_matrix("1 1; 1 1", "filter")
    r = explain.conv_feature_map(image, kernel, stride=1, padding=1)
    # zero-padded 4x4, 2x2 box sums
    assert r["feature_map"] == [[1, 3, 2], [4, 10, 6], [3, 7, 4]]
    strided = explain.conv_feature_map(image, kernel, stride=2, padding=1)
    assert strided["feature_map"] == [[1, 2], [3, 4]]
    assert r["agrees_with_keras"] and strided["agrees_with_keras"]


def test_parse_matrix_errors():
    with pytest.raises(UserError, match="same number of values"):
        explain.parse_matrix("1 2; 3", "image")
    with pytest.raises(UserError, match="must hold numbers"):
        explain.parse_matrix("1 a", "filter")
    np.testing.assert_array_equal(explain.parse_matrix("1,2;3,4", "image"), [[1, 2], [3, 4]])


def test_separable_cost_by_hand():
    r = explain.separable_cost(112, 3, 32, 64)
    assert r["standard"]["params"] == 3 * 3 * 32 * 64 == 18_432
    assert r["separable"]["params"] == 3 * 3 * 32 + 32 * 64 == 2_336
    assert r["standard"]["macs"] == 112 * 112 * 18_432
    assert r["ratio"] == pytest.approx(1 / 64 + 1 / 9)


def test_receptive_field_vgg_argument():
    r = explain.receptive_field(kernel=3, layers=3, channels=10)
    three = r["rows"][2]
    assert three["receptive_field"] == 7
    assert three["stack_params"] == 27 * 100  # 3 * (3*3*C*C)
    assert three["single_params"] == 49 * 100  # one 7x7 conv
    assert three["saving"] == pytest.approx(1 - 27 / 49)
    assert r["rows"][1]["receptive_field"] == 5


def test_compound_scaling():
    r = explain.compound_scaling(phi=1)
    assert r["alpha_beta2_gamma2"] == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    assert round(r["alpha_beta2_gamma2"], 4) == 1.9203
    assert r["flops_constraint_holds"]
    assert (r["depth"], r["width"], r["resolution"]) == (1.2, 1.1, 258)
    assert [row["resolution"] for row in r["table"]] == [224, 240, 260, 300, 380, 456, 528, 600]
    with pytest.raises(UserError):
        explain.compound_scaling(phi=-1)
