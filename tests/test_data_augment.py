"""Window augmentation: the mirrored world stays multi-view consistent, colour jitter is one per window,
draws are deterministic, and the training config switches it on (and rejects bad values)."""

import pytest
import torch

from gssplat_ros.cameras import look_at, make_K
from gssplat_ros.data.augment import Augmentation, AugmentedWindows, augment_window, jitter_colors, mirror_window

W, H = 32, 24


def window(seed=0):
    g = torch.Generator().manual_seed(seed)
    poses = torch.stack([look_at([0.3 * i, -2.0, 1.2 + 0.1 * i], [0.5, 1.0, 0.8], up=(0, 0, 1)) for i in range(3)])
    K = torch.stack([make_K(30.0 + i, 31.0, 15.0 + i, 12.5) for i in range(3)])

    def views(n, s):
        return {
            f"{s}_images": torch.rand(n, 3, H, W, generator=g),
            f"{s}_depth": 1.0 + torch.rand(n, 1, H, W, generator=g) if s == "context" else 1.0 + torch.rand(n, H, W, generator=g),
            f"{s}_labels": torch.randint(0, 20, (n, H, W), generator=g),
        }  # fmt: skip

    batch = {**views(2, "context"), **views(1, "target"), "scene": "s"}
    batch.update(context_K=K[:2], context_world_from_cam=poses[:2], target_K=K[2:], target_world_from_cam=poses[2:])
    return batch


def unproject(K, world_from_cam, u, v, depth):
    """World point of pixel (u, v) (integer indices; centres at +0.5) at `depth` along the optical axis."""
    x = (u + 0.5 - K[0, 2]) / K[0, 0] * depth
    y = (v + 0.5 - K[1, 2]) / K[1, 1] * depth
    return (world_from_cam @ torch.tensor([x, y, depth, 1.0]))[:3]


def project(K, world_from_cam, point):
    cam = torch.linalg.inv(world_from_cam) @ torch.cat([point, torch.ones(1)])
    return K[0, 0] * cam[0] / cam[2] + K[0, 2], K[1, 1] * cam[1] / cam[2] + K[1, 2]


def test_mirrored_window_is_the_same_scene_seen_in_a_mirrored_world():
    b = window()
    m = mirror_window(b)
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    for u, v in [(0, 0), (5, 17), (W - 1, H - 1)]:
        d = float(b["context_depth"][0, 0, v, u])
        assert float(m["context_depth"][0, 0, v, W - 1 - u]) == d  # the pixel moved, its depth with it
        assert m["context_labels"][0, v, W - 1 - u] == b["context_labels"][0, v, u]
        assert torch.equal(m["context_images"][0, :, v, W - 1 - u], b["context_images"][0, :, v, u])
        p = unproject(b["context_K"][0], b["context_world_from_cam"][0], u, v, d)
        q = unproject(m["context_K"][0], m["context_world_from_cam"][0], W - 1 - u, v, d)
        assert torch.allclose(q, p * mirror, atol=1e-5)  # the same world point, mirrored in x
        # ... and every other view (targets too) sees it at the mirrored pixel: x -> W - x, y unchanged
        for key in ("context", "target"):
            i = 1 if key == "context" else 0
            x, y = project(b[f"{key}_K"][i], b[f"{key}_world_from_cam"][i], p)
            x2, y2 = project(m[f"{key}_K"][i], m[f"{key}_world_from_cam"][i], q)
            assert float(x2) == pytest.approx(W - float(x), abs=1e-4) and float(y2) == pytest.approx(float(y), abs=1e-4)
    rot = m["context_world_from_cam"][:, :3, :3]
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-6)
    assert (torch.linalg.det(rot) > 0).all()  # still a proper rotation; the world keeps z up
    assert torch.allclose(m["context_world_from_cam"][:, 2, 3], b["context_world_from_cam"][:, 2, 3])
    twice = mirror_window(m)
    assert all(torch.allclose(twice[k], b[k]) for k in b if k != "scene")


def test_colour_jitter_is_one_change_for_the_whole_window():
    b = window()
    same = jitter_colors(b, 1.0, 1.0, 1.0)
    assert torch.allclose(same["context_images"], b["context_images"], atol=1e-6)
    j = jitter_colors(b, 1.2, 0.8, 0.5)
    assert j["context_images"].min() >= 0 and j["context_images"].max() <= 1
    assert torch.equal(j["context_depth"], b["context_depth"]) and torch.equal(j["target_labels"], b["target_labels"])
    # a grey pixel stays grey under saturation; all views get the same brightness factor
    grey = {**b, "context_images": torch.full((2, 3, H, W), 0.25), "target_images": torch.full((1, 3, H, W), 0.25)}
    g = jitter_colors(grey, 1.2, 0.8, 0.5)
    assert torch.allclose(g["context_images"], torch.full_like(g["context_images"], 0.3))
    assert torch.allclose(g["target_images"], torch.full_like(g["target_images"], 0.3))


class Windows(torch.utils.data.Dataset):
    def __init__(self):
        self.epochs = []

    def __len__(self):
        return 4

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __getitem__(self, i):
        return window(i)


def test_augmented_windows_are_deterministic_per_seed_epoch_and_index():
    ds = AugmentedWindows(Windows(), Augmentation(flip_prob=0.5, color_jitter=0.3), seed=1)
    a, b = ds[2], ds[2]
    assert torch.equal(a["context_images"], b["context_images"])
    ds.set_epoch(1)
    assert ds.windows.epochs == [1]
    assert not torch.equal(ds[2]["context_images"], a["context_images"])  # another epoch, another draw
    flip = AugmentedWindows(Windows(), Augmentation(flip_prob=1.0), seed=0)
    assert torch.equal(flip[0]["context_labels"], window(0)["context_labels"].flip(-1))
    rng = __import__("numpy").random.default_rng(0)
    assert augment_window(window(0), Augmentation(), rng)["context_images"].equal(window(0)["context_images"])
