"""The photometric depth refinement on the host (onnxruntime CPU flavour of a refining estimated model): the
numba kernel against torch's `model.depth_refine.refine_depth` on a generated room, the torch fallback, and
the cases the kernel handles apart (points no neighbour sees, points behind a neighbour, image borders)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gssplat_ros.model.depth import nearest_views
from gssplat_ros.model.depth_refine import refine_depth
from gssplat_ros.runtime.host_refine import HostRefinement

PLANES, RANGE, RADIUS = 17, 0.4, 1  # the shipped estimated model's refinement


def _scene_window(views: int = 3, width: int = 64, height: int = 48):
    """A generated room: (images, K, world_from_cam, cam_from_world, nbrs) and a rough depth to refine
    (the true depth blurred and scaled by 15%, so the refinement has something to correct)."""
    pytest.importorskip("numba")
    from gssplat_ros.export.parity import parity_inputs

    pin = parity_inputs(views, width, height, "sensor").inputs.as_dict()
    true_depth = pin["depth"]
    rough = torch.nn.functional.avg_pool2d(true_depth, 5, 1, 2, count_include_pad=False) * 1.15
    nbrs = nearest_views(pin["world_from_cam"], min(3, views - 1))
    return (rough, pin["images"], pin["K"], pin["world_from_cam"], pin["cam_from_world"], nbrs), true_depth


def _torch_reference(args) -> np.ndarray:
    with torch.no_grad():
        return refine_depth(*args, PLANES, RANGE, RADIUS).numpy()


def test_numba_refinement_matches_torch_on_a_generated_room():
    args, true_depth = _scene_window()
    want = _torch_reference(args)
    got = HostRefinement(PLANES, RANGE, RADIUS, use_numba=True)(*(a.numpy() for a in args))
    assert got.shape == want.shape and got.dtype == np.float32
    # the same candidate everywhere (bilinear weights and sums in grid_sample's order): only float rounding
    # of the parabola's sub-step shift is left
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    rough = args[0].numpy()
    moved = np.abs(got - rough) > 1e-3
    assert moved.mean() > 0.5  # not a pass-through: the refinement moved most pixels ...
    err_before = np.median(np.abs(rough - true_depth.numpy()) / true_depth.numpy())
    err_after = np.median(np.abs(got - true_depth.numpy()) / true_depth.numpy())
    assert err_after < 0.5 * err_before  # ... towards the true depth


def test_torch_fallback_is_the_reference():
    args, _ = _scene_window(views=2, width=32, height=24)
    got = HostRefinement(PLANES, RANGE, RADIUS, use_numba=False)(*(a.numpy() for a in args))
    np.testing.assert_array_equal(got, _torch_reference(args))


def test_unseen_points_keep_their_depth_and_agree_with_torch():
    """A neighbour far behind the reference camera sees none of its points (they lie behind it), and a
    neighbour looking away sees none either: the depth stays where it was, as in torch."""
    pytest.importorskip("numba")
    from gssplat_ros.cameras import look_at, make_K, rigid_inverse

    torch.manual_seed(0)
    height, width = 24, 32
    world_from_cam = torch.stack([
        look_at((0.0, 0.0, 0.0), (0.0, 5.0, 0.0)),
        look_at((0.0, 30.0, 0.0), (0.0, 40.0, 0.0)),  # in front of the points, looking away from them
        look_at((0.3, 0.0, 0.0), (0.3, 5.0, 0.0)),  # a near neighbour that does see them
    ])  # fmt: skip
    K = make_K(30.0, 30.0, width / 2, height / 2)[None].repeat(3, 1, 1)
    images = torch.rand(3, 3, height, width)
    depth = 2.0 + torch.rand(3, 1, height, width)
    nbrs = torch.tensor([[1], [0], [0]])
    args = (depth, images, K, world_from_cam, rigid_inverse(world_from_cam), nbrs)
    want = _torch_reference(args)
    got = HostRefinement(PLANES, RANGE, RADIUS, use_numba=True)(*(a.numpy() for a in args))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[0], depth[0].numpy())  # view 0's only neighbour sees nothing
    assert not np.array_equal(got[2], depth[2].numpy())  # view 2 sees view 0's image and moves


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="planes >= 3"):
        HostRefinement(2, RANGE, RADIUS)
    pytest.importorskip("numba")
    args, _ = _scene_window(views=2, width=32, height=24)
    arrays = [a.numpy() for a in args]
    arrays[-1] = np.array([[1], [2]])  # view 2 does not exist
    with pytest.raises(ValueError, match="outside the 2 views"):
        HostRefinement(PLANES, RANGE, RADIUS, use_numba=True)(*arrays)


def test_three_graph_set_from_the_cli_and_a_missing_depth_graph(tmp_path, capsys):
    """`gssplat export onnx --scatter host` of a refining estimated model writes and names the depth graph;
    the runtime refuses a first graph whose depth graph is missing with one clear error."""
    pytest.importorskip("onnxruntime")
    from gssplat_ros.cli import main
    from gssplat_ros.export.onnx_export import depth_graph_path
    from gssplat_ros.model.checkpoint import load_model
    from gssplat_ros.runtime.onnx_runtime import depth_stage_for, open_session, session_options
    from tests.test_export import tiny_checkpoint

    stem = tiny_checkpoint("estimated")
    if not load_model(stem)[0].refines_on_host(32, 24):
        pytest.skip("no shipped estimated weights: the fresh tiny model has no refinement")
    argv = ["export", "onnx", "--checkpoint", str(stem), "--views", "2", "--width", "32", "--height", "24",
            "--scatter", "host", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    first = next(tmp_path.glob("*_host.onnx"))
    assert f"the depth graph before them {depth_graph_path(first)}" in out
    options = session_options(1)
    sess = open_session(first, options, ["CPUExecutionProvider"])
    assert depth_stage_for(first, sess, options, ["CPUExecutionProvider"]) is not None
    depth_graph_path(first).unlink()
    with pytest.raises(FileNotFoundError, match="needs its depth graph"):
        depth_stage_for(first, sess, options, ["CPUExecutionProvider"])
