"""depth_reference_width: the cost volume run on a smaller copy of the window, its depth upsampled."""

import pytest
import torch
import torch.nn.functional as F

from gssplat_ros.model import GSsplatNet, ModelConfig
from tests.test_model_common import make_window, net_inputs


def test_depth_downscale_rule():
    cfg = ModelConfig.preset("tiny", depth_mode="estimated", depth_reference_width=160)
    assert cfg.depth_downscale(320, 240) == 2 and cfg.depth_downscale(640, 480) == 4
    assert cfg.depth_downscale(160, 120) == 1 and cfg.depth_downscale(304, 240) == 1  # 152 < 160
    assert cfg.depth_downscale(320, 244) == 1  # 122 is not divisible by 4
    assert cfg.replace(depth_reference_width=0).depth_downscale(640, 480) == 1
    assert ModelConfig.preset("tiny", depth_reference_width=160).depth_downscale(320, 240) == 1  # sensor depth


def _nets():
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", depth_mode="estimated", photometric_cost=True)
    plain = GSsplatNet(cfg).eval()
    scaled = GSsplatNet(cfg.replace(depth_reference_width=32)).eval()
    scaled.load_state_dict(plain.state_dict())
    return plain, scaled


def test_depth_is_the_half_size_cascade_upsampled():
    plain, scaled = _nets()
    images, K, wfc, cfw, _ = net_inputs(make_window(num_views=3, height=48, width=64), with_depth=False)
    with torch.no_grad():
        out = scaled(images, K, wfc, cfw)
        K_half = K.clone()
        K_half[:, :2] /= 2
        small = plain.estimate_depth(F.avg_pool2d(images, 2), K_half, wfc, cfw)  # the cascade at 32x24
        expect = F.interpolate(small[-1], size=(48, 64), mode="bilinear", align_corners=False)[:, 0]
        full_size = plain(images, K, wfc, cfw)
    assert [tuple(level.shape[-2:]) for level in out["depth_levels"]] == [(6, 8), (12, 16), (24, 32)]
    torch.testing.assert_close(out["depth"], expect)
    torch.testing.assert_close(out["color_means"][..., 2].shape, full_size["color_means"][..., 2].shape)
    assert out["sem_logits"].shape == full_size["sem_logits"].shape == (3, 48, 64, 20)
    assert not torch.allclose(out["depth"], full_size["depth"], atol=1e-3)  # a different depth, same contract
    # at the reference size itself nothing changes
    small_in = (F.avg_pool2d(images, 2), K_half, wfc, cfw)
    with torch.no_grad():
        torch.testing.assert_close(scaled(*small_in)["depth"], plain(*small_in)["depth"])


def test_depth_reference_width_exports_and_matches_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("numba")
    import onnx

    from gssplat_ros.export.onnx_export import export_onnx
    from gssplat_ros.export.parity import parity_inputs, run_parity
    from gssplat_ros.export.trt_ops import check_model

    _, scaled = _nets()
    path = export_onnx(scaled, tmp_path / "ref.onnx", 2, 64, 48, "fp32").path
    report = run_parity(scaled, path, 2, 64, 48, "fp32", parity_inputs(2, 64, 48, "estimated"))
    assert report.max_abs["means_m"] <= 1e-3 and report.passed, report.failures
    model = onnx.load(str(path))
    problems = check_model(model)  # the downscale adds AveragePool and a linear Resize, both in TensorRT 10.3
    assert not problems, "\n".join(map(str, problems))
    assert "Resize" in {n.op_type for n in model.graph.node}
