"""`gssplat eval`: metrics JSON, table, side-by-side PNGs, and clear errors."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gssplat_ros.errors import DataError
from tests.ros_harness import random_checkpoint


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    pytest.importorskip("numba")
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("evalscenes")
    generate_dataset(GenerateConfig(out=str(root), scenes=1, frames=8, width=64, height=48, seed=9))
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("scene0000_00\n")
    return root


def gssplat(*args):
    return subprocess.run([sys.executable, "-m", "gssplat_ros.cli", *map(str, args)], capture_output=True, text=True)


def test_eval_writes_json_table_and_images(tmp_path, scenes):
    ckpt = random_checkpoint(tmp_path)
    r = gssplat("eval", "--checkpoint", ckpt, "--data", scenes, "--views", 2, "--size", "64x48", "--json",
                tmp_path / "out.json", "--images", tmp_path / "img", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "protocol:" in r.stdout and "| PSNR |" in r.stdout
    res = json.loads((tmp_path / "out.json").read_text())
    m = res["metrics"]
    for key in ("psnr", "ssim", "miou", "total_accuracy", "class_average_accuracy", "ms_per_query"):
        assert key in m
    assert m["num_images"] == 1 and 0 <= m["miou"] <= 1 and m["psnr"] > 5
    assert "depth_absrel" not in m and "render_depth_absrel" in m  # a sensor model's input depth is the GT
    (image,) = res["images"]  # one row per query image: where it came from and its metrics
    assert image["scene"] == "scene0000_00" and image["miou"] == pytest.approx(m["miou"]) and "target" in image
    assert "nearest frames" in res["protocol"]
    rows = res["per_class"]  # each class in the GT once, with its IoU and the images that have it
    assert rows and all(0 <= r["iou"] <= 1 and r["images"] == 1 for r in rows)
    assert len({r["class"] for r in rows}) == len(rows) and "per-class IoU" in r.stdout
    assert abs(sum(r["iou"] for r in rows) / len(rows) - m["miou"]) < 1e-9  # one image: mIoU is their mean
    low, high = m["ci95"]["miou"]  # one scene: every bootstrap draw is that scene, so the interval is the mean
    assert low == pytest.approx(m["miou"]) and high == pytest.approx(m["miou"]) and "95% (scenes resampled)" in r.stdout
    pngs = list((tmp_path / "img").glob("*.png"))
    assert len(pngs) == 1
    # the aggregate holds metrics only: no averaged frame indices, pixel counts or item counts
    assert not {"target", "num_pixels", "count", "context", "ious"} & set(m)
    # the forward-warp bar, scored on the same pixels, is its own row in the JSON and the table
    warp = res["baselines"]["warp_sensor"]
    assert warp["label"] == "forward warp (sensor depth)" and "| forward warp (sensor depth) |" in r.stdout
    assert warp["psnr"] > 15 and 0 < warp["ssim"] <= 1 and 0.5 < warp["coverage"] <= 1
    assert warp["psnr"] == pytest.approx(image["warp_sensor_psnr"])


@pytest.fixture(scope="module")
def plain_folder(tmp_path_factory):
    """Three scenes and no split files, like someone else's rooms or a capture."""
    pytest.importorskip("numba")
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("plain")
    generate_dataset(GenerateConfig(out=str(root), scenes=3, frames=6, width=64, height=48, seed=4))
    return root


def test_a_folder_without_splits_evaluates_every_scene(tmp_path, plain_folder):
    from gssplat_ros.evaluate import EvalConfig, evaluate

    base = dict(data=str(plain_folder), views=2, width=64, height=48, checkpoint=random_checkpoint(tmp_path),
                device="cpu", render_backend="cpu", warmup=0)
    res = evaluate(EvalConfig(**base))
    assert sorted({m["scene"] for m in res["images"]}) == ["scene0000_00", "scene0001_00", "scene0002_00"]
    assert "split: all" in res["protocol"]
    (plain_folder / "splits").mkdir()  # a folder that names its test scenes keeps them
    try:
        (plain_folder / "splits" / "test.txt").write_text("scene0001_00\n")
        res = evaluate(EvalConfig(**base))
        assert {m["scene"] for m in res["images"]} == {"scene0001_00"} and "split: test" in res["protocol"]
    finally:
        shutil.rmtree(plain_folder / "splits")


def test_scenes_without_labels_score_colour_and_say_no_labels(tmp_path, plain_folder):
    root = tmp_path / "capture"
    shutil.copytree(plain_folder / "scene0000_00", root / "scene0000_00")
    shutil.rmtree(root / "scene0000_00" / "label-filt")
    r = gssplat("eval", "--checkpoint", random_checkpoint(tmp_path), "--data", root, "--views", 2, "--size", "64x48",
                "--device", "cpu", "--backend", "cpu", "--json", tmp_path / "out.json", "--context-rerender")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "out.json").read_text())
    m = res["metrics"]
    assert res["labels"] is False and "no labels" in r.stdout and "no labels" in res["protocol"]
    assert m["psnr"] > 5 and 0 < m["ssim"] <= 1 and "render_depth_absrel" in m
    assert "miou" not in m and "| mIoU |" not in r.stdout and res["per_class"] == []
    assert m["context_psnr"] > 5 and "context re-render PSNR" in r.stdout
    assert res["baselines"]["warp_sensor"]["psnr"] > 15


def test_min_baseline_keeps_near_duplicate_frames_out_of_the_context(plain_folder):
    from gssplat_ros.data.windows import WindowDataset, near_duplicates, view_distances

    ds = WindowDataset(plain_folder, split="all", views=2, size=(64, 48), context_stride=1)
    poses = ds.scenes[0].poses
    _, context, (t0,) = ds.select(0)
    gaps = np.linalg.norm(poses[:, :3, 3].numpy() - poses[t0, :3, 3].numpy(), axis=-1)  # [F] metres
    limit = float(gaps[context].max()) + 1e-4  # today's contexts are all nearer than this
    far = WindowDataset(plain_folder, split="all", views=2, size=(64, 48), context_stride=1, min_baseline_m=limit)
    _, context_far, _ = far.select(0)
    assert all(gaps[c] >= limit for c in context_far) and not set(context) & set(context_far)
    # a frame counts as a near duplicate only when it is within both limits
    assert near_duplicates(poses, poses[t0], limit, 0.0) == [i for i in range(len(poses)) if gaps[i] < limit]
    assert near_duplicates(poses, poses[t0], limit, 1e-6) == [t0]
    assert near_duplicates(poses, poses[t0]) == [] and len(view_distances(poses, poses[t0])) == len(poses)
    too_far = WindowDataset(plain_folder, split="all", views=2, size=(64, 48), context_stride=1, min_baseline_m=1e3)
    with pytest.raises(DataError, match="minimum baseline"):
        too_far.select(0)


def test_scene_bootstrap_interval_resamples_whole_scenes():
    from gssplat_ros.evaluate import scene_bootstrap_interval

    nan = float("nan")
    # Two images per scene; the scenes differ (0.5 ... 0.9), images within a scene differ a lot.
    scenes = (("a", 0.5), ("b", 0.6), ("c", 0.7), ("d", 0.8), ("e", 0.9))
    images = [{"scene": s, "miou": v + d} for s, v in scenes for d in (-0.2, 0.2)]
    low, high = scene_bootstrap_interval(images, "miou")
    assert 0.5 < low < 0.7 < high < 0.9  # contains the mean, inside the range of the scene means
    assert scene_bootstrap_interval(images, "miou") == [low, high]  # deterministic
    # Within-scene spread alone does not widen it: one scene gives its mean exactly.
    assert scene_bootstrap_interval(images[:2], "miou") == pytest.approx([0.5, 0.5])
    # More spread between scenes gives a wider interval; NaN images are skipped; no values give NaN.
    wide = [{"scene": m["scene"], "miou": 2 * m["miou"]} for m in images] + [{"scene": "f", "miou": nan}]
    w_low, w_high = scene_bootstrap_interval(wide, "miou")
    assert w_high - w_low == pytest.approx(2 * (high - low))
    assert all(x != x for x in scene_bootstrap_interval([{"scene": "a", "miou": nan}], "miou"))


def test_eval_depth_mode_mismatch_is_one_line(tmp_path, scenes):
    ckpt = random_checkpoint(tmp_path, "sensor")
    r = gssplat("eval", "--checkpoint", ckpt, "--data", scenes, "--views", 2, "--size", "64x48", "--depth", "estimated")
    assert r.returncode == 1 and "sensor-depth model" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_eval_missing_data_is_one_line(tmp_path):
    ckpt = random_checkpoint(tmp_path)
    r = gssplat("eval", "--checkpoint", ckpt, "--data", tmp_path / "nope", "--views", 2)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_bench_encoder_prints_a_row():
    r = gssplat("bench", "encoder", "--views", 2, "--sizes", "64x48", "--depth", "sensor", "--runs", 1)
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| torch | cpu | sensor | 2 | 64x48 |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert float(cells[5]) > 0 and cells[6] == "1.00"  # torch against itself


def test_bench_encoder_interleaves_runtimes_and_reports_the_speedup():
    pytest.importorskip("onnxruntime")
    r = gssplat("bench", "encoder", "--views", 2, "--sizes", "64x48", "--depth", "sensor", "--runs", 2,
                "--runtime", "torch", "onnxruntime")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "interleaved" in r.stdout
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.strip("|").split("|")]
            for ln in r.stdout.splitlines() if "| cpu | sensor | 2 | 64x48 |" in ln}  # fmt: skip
    assert set(rows) == {"torch", "onnxruntime"}
    torch_ms, ort_ms = float(rows["torch"][5]), float(rows["onnxruntime"][5])
    # the printed times are rounded to 0.1 ms, the printed ratio to 0.01: it must lie within what that allows
    low, high = (torch_ms - 0.05) / (ort_ms + 0.05), (torch_ms + 0.05) / max(ort_ms - 0.05, 1e-6)
    assert low - 0.005 <= float(rows["onnxruntime"][6]) <= high + 0.005


def test_bench_blocks_order_times_each_runtime_in_runs_of_calls():
    import time
    from types import SimpleNamespace

    import torch

    from gssplat_ros.bench.encoder import _time_blocks

    calls = []

    class Sleeper:  # a runtime whose call takes a known time
        def __init__(self, name, seconds):
            self.name, self.seconds = name, seconds
            self.info = SimpleNamespace(device=torch.device("cpu"))

        def __call__(self, inputs):
            calls.append(self.name)
            time.sleep(self.seconds)

    medians = _time_blocks([Sleeper("a", 0.002), Sleeper("b", 0.02)], None, runs=5, block=3)
    assert calls[:6] == ["a"] * 3 + ["b"] * 3  # whole blocks, alternating
    assert calls.count("a") == calls.count("b") == 9  # 2 counted per block of 3 -> 3 blocks for 5 runs
    assert 2.0 <= medians[0] < 15.0 and 20.0 <= medians[1] < 60.0


def test_ablations_close_gates_and_skip_aggregation(tmp_path):
    import torch

    from gssplat_ros.bench.encoder import synthetic_inputs
    from gssplat_ros.evaluate import EvalConfig, apply_ablations
    from gssplat_ros.runtime_factory import make_runtime

    ckpt = random_checkpoint(tmp_path)
    rt = make_runtime("torch", ckpt, "sensor", "cpu")
    with torch.no_grad():
        for head in (rt.net.color_head, rt.net.semantic_head):  # open every gate
            head.conv2.bias[0] = 10.0
    inputs = synthetic_inputs(2, 32, 24, True)
    wfc = inputs.world_from_cam
    with torch.no_grad():
        opened = rt.net(inputs.images, inputs.K, wfc, inputs.cam_from_world, inputs.depth)
    assert opened["color_gate"].float().mean() == 1.0
    apply_ablations(rt, EvalConfig(data="", ablate_offsets=True, ablate_aggregation=True))
    with torch.no_grad():
        closed = rt.net(inputs.images, inputs.K, wfc, inputs.cam_from_world, inputs.depth)
    assert closed["color_gate"].float().sum() == 0 and closed["sem_gate"].float().sum() == 0
    assert torch.allclose(closed["color_means"], closed["means0"], atol=1e-6)
    assert rt.net.cfg.aggregate is False


def test_geometry_ablation_removes_the_cues_and_needs_a_model_with_them(tmp_path):
    import pytest
    import torch

    from gssplat_ros.bench.encoder import synthetic_inputs
    from gssplat_ros.evaluate import EvalConfig, apply_ablations
    from gssplat_ros.model import GSsplatNet, ModelConfig
    from gssplat_ros.model.checkpoint import save_checkpoint
    from gssplat_ros.runtime_factory import make_runtime

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", semantic_geometry=True)
    net = GSsplatNet(cfg)
    with torch.no_grad():
        net.semantic_geometry.conv2.weight.normal_(0, 0.5)  # a trained-looking, non-zero embedding
    stem = save_checkpoint(tmp_path / "geo", net, cfg, {})
    rt = make_runtime("torch", str(stem), "sensor", "cpu")
    inputs = synthetic_inputs(2, 32, 24, True)
    args = (inputs.images, inputs.K, inputs.world_from_cam, inputs.cam_from_world, inputs.depth)
    with torch.no_grad():
        with_cues = rt.net(*args)
        apply_ablations(rt, EvalConfig(data="", ablate_geometry=True))
        without = rt.net(*args)
    assert rt.net.semantic_geometry is None
    assert not torch.equal(with_cues["sem_logits"], without["sem_logits"])
    assert torch.equal(with_cues["color_sh"], without["color_sh"])
    plain = make_runtime("torch", random_checkpoint(tmp_path), "sensor", "cpu")
    with pytest.raises(ValueError, match="no geometry cues"):
        apply_ablations(plain, EvalConfig(data="", ablate_geometry=True))


def test_world_shift_moves_every_pose_and_nothing_else():
    import torch

    from gssplat_ros.evaluate import shift_world_z

    pose = torch.eye(4).repeat(2, 1, 1)
    pose[:, 2, 3] = 1.5
    batch = {"context_world_from_cam": pose.clone(), "target_world_from_cam": pose[:1].clone(),
             "context_images": torch.rand(2, 3, 4, 4)}
    assert shift_world_z(batch, 0.0) is batch
    moved = shift_world_z(batch, 0.8)
    assert torch.allclose(moved["context_world_from_cam"][:, 2, 3], torch.full((2,), 2.3))
    assert torch.allclose(moved["target_world_from_cam"][:, 2, 3], torch.tensor([2.3]))
    assert torch.equal(moved["context_world_from_cam"][:, :3, :3], pose[:, :3, :3])
    assert torch.equal(batch["context_world_from_cam"], pose)  # the input window is untouched
    assert moved["context_images"] is batch["context_images"]


def test_estimated_depth_eval_reports_both_warps(tmp_path, scenes):
    from gssplat_ros.evaluate import EvalConfig, evaluate

    res = evaluate(EvalConfig(data=str(scenes), views=2, width=64, height=48, depth="estimated", device="cpu",
                              checkpoint=random_checkpoint(tmp_path, "estimated"), render_backend="cpu", warmup=0))
    rows = res["baselines"]
    assert rows["warp_estimated"]["label"] == "forward warp (model's estimated depth)"
    assert rows["warp_sensor"]["label"] == "forward warp (sensor depth)"
    (image,) = res["images"]  # an untrained depth net's estimate warps differently from the sensor depth
    assert image["warp_estimated_psnr"] != image["warp_sensor_psnr"] and rows["warp_sensor"]["psnr"] > 15


def test_scenes_without_a_label_folder_load_unlabelled_and_a_missing_file_is_still_an_error(tmp_path):
    from gssplat_ros.data.labels import IGNORE_INDEX
    from gssplat_ros.data.scenes import load_scene
    from tests.bag_helpers import make_replica_scene, make_scene

    for fmt, scene, folder, missing in (
            ("scannet", make_scene(tmp_path / "s", frames=2), "label-filt", "1.png"),
            ("replica", make_replica_scene(tmp_path / "r", frames=2), "semantic_class", "semantic_class_1.png")):
        (scene / folder / missing).unlink()
        with pytest.raises(DataError, match=missing.replace(".", r"\.")):
            load_scene(scene, fmt).frame(1)  # a labelled scene with one label image gone: still an error
        shutil.rmtree(scene / folder)
        frame = load_scene(scene, fmt).frame(1)  # an RGB-D capture: every pixel ignored
        assert (frame.labels == IGNORE_INDEX).all() and frame.depth.max() > 0
