"""GSsplatNet: output contract, geometry of the Gaussians, cross-view aggregation, depth modes, ONNX export."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from gssplat_ros.cameras import look_at, make_K, rigid_inverse
from gssplat_ros.export.graphs import ExportWrapper
from gssplat_ros.gaussians import SH_C0, num_sh_bases
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.aggregation import voxel_index, voxel_mean
from gssplat_ros.model.depth import CascadeDepth, nearest_views
from gssplat_ros.model.geometry import SHRotation, quat_to_rotmat, rotmat_to_quat, sh_basis
from gssplat_ros.prediction import OUTPUT_NAMES, Prediction
from tests.test_model_common import make_window, net_inputs


def build(seed: int = 0, **overrides) -> GSsplatNet:
    torch.manual_seed(seed)
    return GSsplatNet(ModelConfig.preset("tiny", **overrides)).eval()


# ------------------------------------------------------------------------------------------ config
def test_presets_and_overrides():
    tiny, paper = ModelConfig.preset("tiny"), ModelConfig.preset("paper")
    assert tiny.name == "tiny" and paper.name == "paper" and paper.depth_candidates == (48, 32, 16)
    cfg = ModelConfig.preset("tiny", num_classes=13, depth_mode="estimated")
    assert cfg.num_classes == 13 and ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        ModelConfig.preset("tiny", num_klasses=3)
    with pytest.raises(ValueError, match="unknown model preset"):
        ModelConfig.preset("huge")
    with pytest.raises(ValueError, match="sh_degree"):
        ModelConfig.preset("tiny", sh_degree=4)


def test_tiny_is_small():
    net = build()
    n = net.num_parameters()
    assert 30_000 < n < 1_000_000, n  # shipped weights must stay far below 10 MB
    assert build(depth_mode="estimated").num_parameters() * 4 < 10e6


# ------------------------------------------------------------------------------------------ contract
@pytest.mark.parametrize(
    "views,height,width,classes,sh_degree",
    [(2, 32, 48, 5, 0), (3, 48, 32, 20, 1), (4, 36, 44, 1, 2)],  # 36x44: divisible by 4 only
)
def test_output_contract(views, height, width, classes, sh_degree):
    net = build(num_classes=classes, sh_degree=sh_degree)
    batch = make_window(views, height, width, targets=0)
    with torch.no_grad():
        out = net(*net_inputs(batch))
    k = num_sh_bases(sh_degree)
    expected = {
        "color_means": (3,), "color_quats": (4,), "color_scales": (3,), "color_opacities": (),
        "color_sh": (k, 3), "sem_means": (3,), "sem_quats": (4,), "sem_scales": (3,), "sem_opacities": (),
        "sem_logits": (classes,), "depth": (),
    }  # fmt: skip
    assert set(expected) == set(OUTPUT_NAMES)
    for name, tail in expected.items():
        assert tuple(out[name].shape) == (views, height, width, *tail), name
        assert out[name].dtype == torch.float32 and torch.isfinite(out[name]).all(), name
    assert tuple(out["context_logits"].shape) == (views, classes, height, width)
    assert tuple(out["color_gate_logits"].shape) == (views, height, width)
    for prefix in ("color", "sem"):
        assert torch.allclose(out[f"{prefix}_quats"].norm(dim=-1), torch.ones(()), atol=1e-5)
        assert (out[f"{prefix}_scales"] > 0).all()
        assert ((out[f"{prefix}_opacities"] >= 0) & (out[f"{prefix}_opacities"] <= 1)).all()
    pred = Prediction.from_outputs({n: out[n] for n in OUTPUT_NAMES})
    assert len(pred.color) == views * height * width and pred.semantic.num_features == classes


def test_input_errors_name_the_argument():
    net = build()
    images, K, wfc, cfw, depth = net_inputs(make_window(2, 32, 48, targets=0))
    with pytest.raises(ValueError, match="depth"):
        net(images, K, wfc, cfw, None)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(images[..., :30, :], K, wfc, cfw, depth[..., :30, :])
    with pytest.raises(ValueError, match="V >= 2"):
        net(images[:1], K[:1], wfc[:1], cfw[:1], depth[:1])
    with pytest.raises(ValueError, match="cam_from_world"):
        net(images, K, wfc, cfw[:, :3], depth)


# ------------------------------------------------------------------------------------------ geometry
def test_means_at_unprojected_depth_when_gate_closed():
    net = build(gate_bias_init=-50.0)
    batch = make_window(2, 32, 48, targets=0)
    images, K, wfc, cfw, depth = net_inputs(batch)
    with torch.no_grad():
        out = net(images, K, wfc, cfw, depth)
    assert torch.equal(out["color_gate"], torch.zeros_like(out["color_gate"]))
    for prefix in ("color", "sem"):
        means = out[f"{prefix}_means"]
        assert torch.allclose(means, out["means0"], atol=1e-6)
        # back into each camera: z = depth, and the projection lands on the pixel centre
        cam = torch.einsum("vij,vhwj->vhwi", cfw[:, :3, :3], means) + cfw[:, None, None, :3, 3]
        assert torch.allclose(cam[..., 2], depth[:, 0], atol=1e-4)
        u = K[:, 0, 0, None, None] * cam[..., 0] / cam[..., 2] + K[:, 0, 2, None, None]
        v = K[:, 1, 1, None, None] * cam[..., 1] / cam[..., 2] + K[:, 1, 2, None, None]
        assert torch.allclose(u[0, 5, 7], torch.tensor(7.5), atol=1e-3)
        assert torch.allclose(v[1, 9, 3], torch.tensor(9.5), atol=1e-3)


def test_open_gate_offsets_are_bounded_by_depth_over_far():
    net = build(gate_bias_init=50.0, offset_far_m=5.0)
    batch = make_window(2, 32, 48, targets=0)
    images, K, wfc, cfw, depth = net_inputs(batch)
    with torch.no_grad():
        out = net(images, K, wfc, cfw, depth)
    assert torch.equal(out["sem_gate"], torch.ones_like(out["sem_gate"]))
    delta_cam = torch.einsum("vij,vhwj->vhwi", cfw[:, :3, :3], out["sem_means"] - out["means0"])
    bound = depth[:, 0, :, :, None] / 5.0
    assert (delta_cam.abs() <= bound + 1e-5).all() and delta_cam.abs().max() > 0


def test_initial_scale_covers_about_a_pixel_and_colour_matches_input():
    net = build(init_scale_px=0.7)
    batch = make_window(2, 32, 48, targets=0)
    images, K, wfc, cfw, depth = net_inputs(batch)
    with torch.no_grad():
        out = net(images, K, wfc, cfw, depth)
    px = out["color_scales"] * K[:, 0, 0, None, None, None] / depth[:, 0, :, :, None]
    assert 0.4 < px.median() < 1.2, px.median()
    rgb = out["color_sh"][..., 0, :] * SH_C0 + 0.5
    assert (rgb - images.permute(0, 2, 3, 1)).abs().mean() < 0.05


def test_rotmat_quat_roundtrip_including_half_turns():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(64, 4, generator=g), dim=-1)
    rots = torch.cat([quat_to_rotmat(q), torch.diag_embed(torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1.0]]))])
    back = quat_to_rotmat(rotmat_to_quat(rots))
    assert torch.allclose(back, rots, atol=1e-5)


def test_world_quats_are_camera_rotation_at_init():
    """With the local rotation near identity, the world rotation is about the camera's."""
    net = build()
    batch = make_window(2, 32, 48, targets=0)
    with torch.no_grad():
        out = net(*net_inputs(batch))
    R = quat_to_rotmat(out["color_quats"][1, 10, 10][None])[0]
    assert (R - batch["context_world_from_cam"][1, :3, :3]).abs().max() < 0.2


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_sh_rotation_camera_to_world(degree):
    g = torch.Generator().manual_seed(degree)
    R = quat_to_rotmat(torch.nn.functional.normalize(torch.randn(2, 4, generator=g), dim=-1))
    k = num_sh_bases(degree)
    c_cam = torch.randn(2, 5, k, 3, generator=g)
    c_world = SHRotation(degree)(c_cam, R)
    d_world = torch.nn.functional.normalize(torch.randn(2, 7, 3, generator=g), dim=-1)
    d_cam = torch.einsum("vji,vnj->vni", R, d_world)  # R^T d
    col_world = torch.einsum("vnk,vpkc->vpnc", sh_basis(d_world, degree), c_world)
    col_cam = torch.einsum("vnk,vpkc->vpnc", sh_basis(d_cam, degree), c_cam)
    assert torch.allclose(col_world, col_cam, atol=1e-4)


# ------------------------------------------------------------------------------------------ aggregation
def test_voxel_mean_groups_by_voxel_and_skips_invalid():
    pts = torch.tensor([[0.01, 0.02, 0.03], [0.051, 0.049, 0.05], [0.55, 0.0, 0.0], [0.02, 0.02, 0.02]])
    feats = torch.tensor([[1.0], [3.0], [10.0], [100.0]])
    valid = torch.tensor([True, True, True, False])
    idx = voxel_index(pts, valid, voxel_size_m=0.1, table_size=16)
    mean = voxel_mean(feats, idx)
    assert torch.allclose(mean[:, 0], torch.tensor([2.0, 2.0, 10.0, 0.0]))
    assert idx.weight[1, 0] > 0.97 and idx.weight[0, 0] < 0.5  # point 1 sits at its voxel centre


def test_row_scatter_add_matches_scatter_add_with_gradients():
    """RowScatterAdd (index_add; exported as ScatterND) sums like scatter_add (exported as ScatterElements)."""
    from gssplat_ros.model.aggregation import RowScatterAdd

    g = torch.Generator().manual_seed(0)
    slot = torch.randint(0, 16, (200,), generator=g)  # ~12 rows per slot
    rows = torch.randn(200, 5, dtype=torch.float64, generator=g, requires_grad=True)
    expected = torch.zeros(16, 5, dtype=torch.float64).scatter_add(0, slot[:, None].expand(200, 5), rows)
    assert torch.allclose(RowScatterAdd.apply(slot, rows, 16), expected)
    assert torch.autograd.gradcheck(lambda r: RowScatterAdd.apply(slot, r, 16), (rows,))


def test_voxel_mean_ignores_hash_collisions():
    """Two voxels forced into one slot (table of 1 slot) keep separate means or none, never a mix."""
    pts = torch.tensor([[0.05, 0.05, 0.05], [0.05, 0.05, 0.05], [1.05, 0.05, 0.05]])
    feats = torch.tensor([[1.0], [3.0], [50.0]])
    idx = voxel_index(pts, torch.ones(3, dtype=torch.bool), 0.1, table_size=1)
    mean = voxel_mean(feats, idx)
    assert not torch.isclose(mean, torch.tensor(18.0)).any()  # the mixed mean (1 + 3 + 50) / 3
    assert (mean == 0).all()


def _shared_and_disjoint_views(height=32, width=48):
    """Two identical cameras: view 1's left half at view 0's depth (shared voxels), right half far away."""
    pose = look_at((0.0, 0.0, 1.0), (0.0, 3.0, 1.0))
    wfc = torch.stack([pose, pose])
    K = make_K(40.0, 40.0, width / 2, height / 2)[None].repeat(2, 1, 1)
    depth = torch.full((2, 1, height, width), 2.03)
    depth[1, :, :, width // 2 :] = 5.03
    g = torch.Generator().manual_seed(3)
    images = torch.rand(2, 3, height, width, generator=g)
    return images, K, wfc, rigid_inverse(wfc), depth


def test_aggregation_mixes_views_only_in_shared_voxels():
    net = build()
    images, K, wfc, cfw, depth = _shared_and_disjoint_views()
    changed = images.clone()
    changed[1] = torch.rand(changed[1].shape, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        a = net(images, K, wfc, cfw, depth)
        b = net(changed, K, wfc, cfw, depth)
    width = images.shape[-1]
    margin = 4  # the 3x3 head convs spread a change by 2 pixels; keep clear of the boundary
    for name in ("sem_logits", "color_sh", "color_scales", "sem_opacities"):
        diff = (a[name][0] - b[name][0]).abs()
        diff = diff.reshape(diff.shape[0], width, -1).amax(-1)  # [H, W]
        assert diff[:, : width // 2 - margin].max() > 1e-6, name  # shared voxels: view 1 reaches view 0
        assert diff[:, width // 2 + margin :].max() < 1e-6, name  # disjoint voxels: untouched


def test_without_aggregation_views_are_independent():
    net = build(aggregate=False)
    images, K, wfc, cfw, depth = _shared_and_disjoint_views()
    changed = images.clone()
    changed[1] = 1.0 - changed[1]
    with torch.no_grad():
        a, b = net(images, K, wfc, cfw, depth), net(changed, K, wfc, cfw, depth)
    assert torch.allclose(a["sem_logits"][0], b["sem_logits"][0], atol=1e-6)


# ------------------------------------------------------------------------------------------ depth modes
def test_sensor_depth_passes_through():
    net = build()
    batch = make_window(2, 32, 48, targets=0)
    batch["context_depth"][0, 0, :4, :4] = 0.0  # holes
    with torch.no_grad():
        out = net(*net_inputs(batch))
    assert torch.equal(out["depth"], batch["context_depth"][:, 0])
    assert out["depth_levels"] == []
    assert (out["color_opacities"][0, :4, :4] == 0).all() and (out["color_scales"][0, :4, :4] > 0).all()


def test_estimated_depth_ignores_the_depth_argument():
    net = build(depth_mode="estimated")
    batch = make_window(3, 32, 48, targets=0)
    images, K, wfc, cfw, depth = net_inputs(batch)
    with torch.no_grad():
        a = net(images, K, wfc, cfw, None)
        b = net(images, K, wfc, cfw, depth * 3.0)
    for name in OUTPUT_NAMES:
        assert torch.equal(a[name], b[name]), name
    shapes = [tuple(x.shape) for x in a["depth_levels"]]
    assert shapes == [(3, 1, 8, 12), (3, 1, 16, 24), (3, 1, 32, 48)]
    cfg = net.cfg
    assert (a["depth"] >= cfg.near_m - 1e-4).all() and (a["depth"] <= cfg.far_m + 1e-4).all()
    assert torch.equal(a["depth"], a["depth_levels"][-1][:, 0])


def test_nearest_views_excludes_self():
    wfc = torch.stack([look_at((0.1 * i, 0, 1), (0.1 * i, 3, 1)) for i in range(5)])
    nb = nearest_views(wfc, 3)
    assert nb.shape == (5, 3) and not (nb == torch.arange(5)[:, None]).any()
    assert set(nb[0].tolist()) == {1, 2, 3} and set(nb[2].tolist()[:2]) == {1, 3}


def _textured_wall(height: int = 32, width: int = 48, true_depth: float = 3.0):
    """Two views of a textured wall at `true_depth`: (features [2, 8, H, W], K, poses)."""
    # wall at y = 3; a 0.3 m baseline gives an integer disparity (4 px) at 3 m, so bilinear blur of the
    # warped texture does not bias the (unnormalised) correlation towards a neighbouring plane
    poses = torch.stack([look_at((x, 0.0, 1.0), (x, 3.0, 1.0)) for x in (0.0, 0.3)])
    K = make_K(40.0, 40.0, width / 2, height / 2)[None].repeat(2, 1, 1)
    g = torch.Generator().manual_seed(0)
    freqs = (torch.rand(8, 2, generator=g) * 15 + 12) * torch.sign(torch.randn(8, 2, generator=g))  # rad/m
    phases = torch.rand(8, generator=g) * 6.28
    feats = []
    for pose in poses:  # analytic texture sampled where each pixel's ray hits the wall
        ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
        ray = torch.stack([(xs - width / 2) / 40.0, (ys - height / 2) / 40.0, torch.ones_like(xs)], -1)
        world = ray * true_depth @ pose[:3, :3].T + pose[:3, 3]
        wx, wz = world[..., 0], world[..., 2]
        feats.append(torch.stack([torch.sin(f[0] * wx + f[1] * wz + p) for f, p in zip(freqs, phases)]))
    return torch.stack(feats), K, poses


def test_plane_sweep_peaks_at_the_true_depth():
    """Two views of a textured wall at 3 m: the cost volume's best plane is the one nearest 3 m."""
    height, width, true_depth = 32, 48, 3.0
    feats, K, poses = _textured_wall(height, width, true_depth)
    cfg = ModelConfig.preset("tiny", depth_mode="estimated", cost_groups=8)
    net = CascadeDepth(cfg)
    planes = torch.linspace(1.0, 5.0, 33)[None, :, None, None].expand(2, 33, height, width)
    cost = net.cost_volume(feats, K, poses, rigid_inverse(poses), planes, nearest_views(poses, 1))
    score = cost[:, :, :, 8:-8, 12:-12].sum(dim=(1, 3, 4))  # [V, D], away from the borders
    best = planes[0, score.argmax(dim=1), 0, 0]
    assert torch.allclose(best, torch.tensor([true_depth, true_depth]), atol=0.07), best  # 0.125 m planes

    # the photometric channel (G + 1) is the colour difference: smallest at the true plane, the rest unchanged
    images = feats[:, :3] * 0.5 + 0.5  # [2, 3, H, W] in 0..1
    net = CascadeDepth(cfg.replace(photometric_cost=True))
    with_photo = net.cost_volume(feats, K, poses, rigid_inverse(poses), planes, nearest_views(poses, 1), images)
    assert with_photo.shape == (2, cfg.cost_groups + 1, 33, height, width)
    assert torch.equal(with_photo[:, :-1], cost)
    photo = with_photo[:, -1, :, 8:-8, 12:-12].mean(dim=(2, 3))  # [V, D]
    assert torch.allclose(planes[0, photo.argmin(dim=1), 0, 0], torch.tensor([true_depth] * 2), atol=0.07)
    assert photo.min() < 0.02 < photo.max()


def test_a_checkpoint_grows_into_the_photometric_cost_and_learns_it(tmp_path):
    """init_from copies every old weight, the regulariser's new input channel starts at 0 (same depth as
    before), and that channel's weights get gradient."""
    from safetensors.torch import save_file

    from gssplat_ros.train import init_from_checkpoint

    torch.manual_seed(0)
    old = GSsplatNet(ModelConfig.preset("tiny", depth_mode="estimated")).eval()
    save_file(old.state_dict(), str(tmp_path / "old.safetensors"))
    new = GSsplatNet(old.cfg.replace(photometric_cost=True)).eval()
    assert init_from_checkpoint(new, tmp_path / "old") == len(old.state_dict())
    batch = make_window(3, 32, 48, targets=0)
    wfc = batch["context_world_from_cam"]
    args = (batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc))
    with torch.no_grad():
        before, after = old.estimate_depth(*args), new.estimate_depth(*args)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    first = new.depth_net.regularize[0].enc[0].weight  # [C, G + 1, 3, 3, 3]
    assert first.shape[1] == old.cfg.cost_groups + 1 and torch.count_nonzero(first[:, -1]) == 0
    new.train()
    sum(level.mean() for level in new.estimate_depth(*args)).backward()
    assert first.grad[:, -1].abs().sum() > 0
    with pytest.raises(ValueError, match="photometric_cost needs the input images"):
        new.depth_net([torch.zeros(3, 64, 8, 12), torch.zeros(3, 48, 16, 24), torch.zeros(3, 16, 32, 48)],
                      *args[1:], 48)


def test_sweep_range_sets_the_planes_and_keeps_the_decoder_normalisation():
    """Level 0 spans the sweep range (uniform in depth or in inverse depth); finer levels centre on the prior."""
    base = ModelConfig.preset("tiny", depth_mode="estimated")
    assert base.sweep_range == (base.near_m, base.far_m)
    cfg = base.replace(sweep_near_m=0.25, sweep_far_m=6.0)
    assert cfg.far_m == base.far_m and cfg.sweep_range == (0.25, 6.0)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    net = CascadeDepth(cfg)
    planes = net.candidates(0, None, (2, 3, 4))  # [V, D, h, w]
    assert planes.shape == (2, cfg.depth_candidates[0], 3, 4)
    assert planes[0, 0, 0, 0].item() == pytest.approx(0.25) and planes[0, -1, 0, 0].item() == pytest.approx(6.0)
    assert torch.allclose(planes[0, 1:, 0, 0] - planes[0, :-1, 0, 0], torch.tensor(5.75 / 31), atol=1e-5)
    prior = torch.full((2, 1, 3, 4), 2.0)
    fine = net.candidates(1, prior, (2, 6, 8))[0, :, 0, 0]  # 16 planes around 2 m, half the level-0 spacing
    assert fine.mean().item() == pytest.approx(2.0, abs=1e-5)
    assert (fine[1:] - fine[:-1]).mean().item() == pytest.approx(5.75 / 31 / 2, abs=1e-5)

    inv = CascadeDepth(cfg.replace(sweep_inverse_depth=True))
    planes = inv.candidates(0, None, (1, 1, 1))[0, :, 0, 0]
    inverse_steps = 1.0 / planes[:-1] - 1.0 / planes[1:]
    assert planes[0].item() == pytest.approx(0.25) and planes[-1].item() == pytest.approx(6.0)
    assert torch.allclose(inverse_steps, inverse_steps[0].expand_as(inverse_steps), atol=1e-4)
    fine = inv.candidates(2, torch.full((1, 1, 1, 1), 3.0), (1, 2, 2))[0, :, 0, 0]
    step = (1 / 0.25 - 1 / 6.0) / 31 / 4  # the level-0 inverse step at 3 m, quartered at level 2
    assert (fine[1:] - fine[:-1]).mean().item() == pytest.approx(9.0 * step, rel=1e-4)
    with pytest.raises(ValueError, match="sweep_near_m < sweep_far_m"):
        base.replace(sweep_near_m=7.0, sweep_far_m=6.0)


# ------------------------------------------------------------------------------------------ export
@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_onnx_export_matches_torch(tmp_path, depth_mode):
    ort = pytest.importorskip("onnxruntime")
    net = build(depth_mode=depth_mode, sh_degree=1)
    wrapper = ExportWrapper(net).eval()
    args = net_inputs(make_window(3, 32, 48, targets=0))
    if depth_mode == "estimated":
        args = args[:4]
    names = wrapper.graph_input_names()
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, args, str(path), opset_version=18, dynamo=False,
            input_names=list(names), output_names=list(wrapper.graph_output_names()),
        )  # fmt: skip
    import onnx

    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Det", "Inverse", "Einsum", "Unique", "If", "Loop", "NonZero"}, ops
    inferred = onnx.shape_inference.infer_shapes(model).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*inferred.value_info, *inferred.input]}
    grid_inputs = [n.input[0] for n in model.graph.node if n.op_type == "GridSample"]
    assert all(ranks.get(name, 4) == 4 for name in grid_inputs)  # 4-D grid sampling only
    assert (depth_mode == "estimated") == bool(grid_inputs)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(names)
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})
    with torch.no_grad():
        ref = wrapper(*args)
    for name, r, o in zip(OUTPUT_NAMES, ref, got):
        assert r.shape == o.shape, name
        # float32 reorderings between the two runtimes; positions in metres, logits O(1)
        assert np.abs(r.numpy() - o).max() < 1e-3, name
    assert math.isfinite(float(np.abs(got[0]).max()))


def test_straight_through_gate_forward_is_hard_and_both_inputs_learn():
    from gssplat_ros.model.heads import gated_offsets

    offsets = torch.randn(4, 3, requires_grad=True)
    logits = torch.tensor([-2.0, -0.1, 0.1, 3.0], requires_grad=True)
    applied, gate = gated_offsets(offsets, logits, "straight_through")
    assert torch.equal(gate.detach(), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.equal(applied[:2].detach(), torch.zeros(2, 3)) and torch.equal(applied[2:].detach(), offsets[2:])
    applied.sum().backward()
    assert (logits.grad != 0).all() and (offsets.grad[:2] != 0).all()  # closed gates: offsets still learn


def test_channel_first_maths_match_the_channel_last_functions():
    """The network's channel-first per-pixel maths (unprojection, voxel index, quaternion product as a
    matrix) give the same values as the channel-last reference functions."""
    from gssplat_ros.model.aggregation import voxel_index_maps
    from gssplat_ros.model.geometry import pixel_rays, quat_left_matrix, quat_multiply, unproject, unproject_maps

    torch.manual_seed(0)
    views, height, width = 3, 12, 16
    K = make_K(20.0, 22.0, 8.5, 5.5).expand(views, 3, 3)
    world_from_cam = torch.stack([look_at([0.3 * i, 0.1, -0.2 * i], [0.0, 0.0, 3.0], up=(0, -1, 0)) for i in range(3)])
    depth = 1.0 + 3.0 * torch.rand(views, height, width)
    last = unproject(pixel_rays(K, height, width), depth, world_from_cam)  # [V, H, W, 3]
    first = unproject_maps(K, depth, world_from_cam)  # [V, 3, H, W]
    assert torch.allclose(first.permute(0, 2, 3, 1), last, atol=1e-5)

    valid = torch.rand(views, height, width) > 0.2
    ref = voxel_index(last.reshape(-1, 3), valid.reshape(-1), 0.25, table_size=64)
    got = voxel_index_maps(first, valid, 0.25, table_size=64)
    assert torch.equal(got.slot, ref.slot) and torch.equal(got.tag, ref.tag) and torch.equal(got.valid, ref.valid)
    assert torch.allclose(got.weight, ref.weight, atol=1e-5) and got.weight.shape == (views * height * width, 1)

    a = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    assert torch.allclose(torch.bmm(quat_left_matrix(a), b[:, :, None])[..., 0], quat_multiply(a, b), atol=1e-6)


def test_normalize_channels_matches_f_normalize_and_has_finite_gradient_at_zero():
    from gssplat_ros.model.geometry import channel_norm, normalize_channels

    x = torch.randn(2, 4, 5, 6)
    x[0, :, 0, 0] = 0.0  # a zero vector: F.normalize leaves it at 0, and so must we, with a finite gradient
    x.requires_grad_(True)
    ours = normalize_channels(x, dim=1, eps=1e-8)
    ref = torch.nn.functional.normalize(x.detach(), dim=1, eps=1e-8)
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(channel_norm(x, 1)[:, 0], torch.linalg.vector_norm(x, dim=1), atol=1e-6)
    ours.sum().backward()
    assert torch.isfinite(x.grad).all()
