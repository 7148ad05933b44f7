"""PSNR / SSIM / mIoU / accuracies on hand-checkable cases, and averaging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gssplat_ros.metrics import (
    Protocol,
    average_metrics,
    confusion_matrix,
    describe_protocol,
    image_metrics,
    psnr,
    semantic_metrics,
    ssim,
)


def test_psnr_hand_values():
    gt = np.zeros((16, 16, 3))
    pred = np.full((16, 16, 3), 0.1)
    assert psnr(pred, gt, quantize=False) == pytest.approx(20.0)  # MSE 0.01
    # 8-bit: 0.1 * 255 = 25.5 rounds to 26
    assert psnr(pred, gt) == pytest.approx(20 * math.log10(255 / 26))
    assert psnr(gt, gt) == math.inf
    valid = np.zeros((16, 16), bool)
    valid[:, :8] = True
    pred[:, 8:] = 1.0  # errors only where invalid
    pred[:, :8] = 0.0
    assert psnr(pred, gt, valid) == math.inf
    assert math.isnan(psnr(pred, gt, np.zeros((16, 16), bool)))


def test_psnr_accepts_chw_torch():
    gt = torch.zeros(3, 8, 12)
    pred = torch.full((3, 8, 12), 0.5)
    assert psnr(pred, gt, quantize=False) == pytest.approx(10 * math.log10(4))


def test_ssim_identity_and_constant_offset():
    rng = np.random.default_rng(0)
    a = rng.random((20, 24, 3))
    assert ssim(a, a) == pytest.approx(1.0)
    # constant images: only the luminance term, (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    x, y = np.full((20, 20, 3), 0.2), np.full((20, 20, 3), 0.6)
    c1 = 0.01**2
    assert ssim(x, y, quantize=False) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1))


def test_ssim_matches_skimage_reference():
    rng = np.random.default_rng(0)
    a = rng.random((40, 50, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    # skimage 0.24 structural_similarity(a, b, channel_axis=-1, data_range=1, gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False) and with win_size=11 (defaults); float64 rounding only
    assert ssim(a, b, quantize=False) == pytest.approx(0.9466099850601325, abs=1e-9)
    assert ssim(a, b, quantize=False, window="uniform") == pytest.approx(0.9481342088367785, abs=1e-9)


def test_ssim_mask_fills_with_gt():
    rng = np.random.default_rng(1)
    gt = rng.random((30, 30, 3))
    pred = gt.copy()
    pred[:, 15:] = rng.random((30, 15, 3))  # garbage only on invalid pixels
    valid = np.zeros((30, 30), bool)
    valid[:, :15] = True
    assert ssim(pred, gt, valid) == pytest.approx(1.0)
    assert ssim(pred, gt) < 0.8


def test_image_metrics_keys():
    m = image_metrics(np.zeros((16, 16, 3)), np.full((16, 16, 3), 0.1), protocol=Protocol(quantize=False))
    assert set(m) == {"psnr", "ssim"} and m["psnr"] == pytest.approx(20.0)


def test_semantic_metrics_hand_case():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 20]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 255, 3]])
    # valid: 7 pixels (the 20 is ignored). class 0: gt 4, pred-as-0 3, TP 3 -> IoU 3/4, acc 3/4.
    # class 1: gt 3, pred-as-1 3 (one is a 0 pixel), TP 2 -> IoU 2/4, acc 2/3; 255 counts as wrong.
    m = semantic_metrics(pred, gt)
    assert m["num_pixels"] == 7
    assert m["miou"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert m["total_accuracy"] == pytest.approx(5 / 7)
    assert m["class_average_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert m["ious"][0] == pytest.approx(0.75) and math.isnan(m["ious"][3])  # 3 predicted, absent in GT


def test_semantic_metrics_ignore_only_and_confusion():
    m = semantic_metrics(np.zeros((2, 2)), np.full((2, 2), 20))
    assert math.isnan(m["miou"]) and m["num_pixels"] == 0
    conf = confusion_matrix(np.array([0, 5, 99]), np.array([0, 0, 0]))
    assert conf.shape == (20, 21) and conf[0, 0] == 1 and conf[0, 5] == 1 and conf[0, 20] == 1


def test_average_metrics_skips_nan():
    out = average_metrics([{"miou": 0.5, "psnr": 20.0, "ious": [1.0, float("nan")]},
                           {"miou": float("nan"), "psnr": 30.0, "ious": [0.0, 0.5]}])
    assert out["count"] == 2 and out["miou"] == 0.5 and out["psnr"] == 25.0
    assert out["ious"] == [0.5, 0.5]


def test_describe_protocol_mentions_choices():
    text = describe_protocol(Protocol(ssim_window="uniform"))
    assert "uniform" in text and "ignored" in text
