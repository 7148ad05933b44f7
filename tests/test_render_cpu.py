"""CPU (numba) rasteriser vs the float64 brute-force reference: images and gradients."""

import subprocess
import sys

import pytest
import torch

from gssplat_ros.cameras import Cameras, look_at, make_K
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.render import RenderSettings, render
from tests.reference_renderer import render_reference

pytest.importorskip("numba")

CPU = RenderSettings(backend="cpu")


def make_scene(n=60, degree=1, features=4, seed=0, width=37, height=29, spread=1.0, opacity=(0.05, 0.95)):
    """Random Gaussians in front of (and a few behind) two cameras; sizes not multiples of 16."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([spread, spread * 0.8, 0.6]) + torch.tensor([0, 0, 3.0])
    means[:3, 2] = -1.0  # behind the camera: culled
    means[3] = torch.tensor([1.6, 0.0, 3.0])  # straddles the right border
    scales = torch.rand(n, 3, generator=g) * 0.15 + 0.02
    scales[4] = torch.tensor([0.3, 1e-4, 0.2])  # nearly degenerate (flat) covariance
    lo, hi = opacity
    gs = Gaussians(
        means=means,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=scales,
        opacities=torch.rand(n, generator=g) * (hi - lo) + lo,
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g) * 0.4,
        features=torch.randn(n, features, generator=g) if features else None,
    )
    f = 0.9 * width
    K = make_K(f, f, width / 2, height / 2)
    poses = torch.stack([torch.eye(4), look_at([0.4, -0.2, 0.3], [0.0, 0.0, 3.0], up=(0, -1, 0))])
    return gs, Cameras(torch.stack([K, K]), poses, width, height)


def compare_images(out, ref, atol):
    for name in ("rgb", "depth", "alpha"):
        err = (getattr(out, name).double() - ref[name]).abs().max().item()
        assert err < atol, f"{name}: max abs error {err}"
    if ref["features"] is not None:
        assert (out.features.double() - ref["features"]).abs().max().item() < atol


@pytest.mark.parametrize("seed, degree", [(0, 0), (1, 1), (2, 2), (3, 3)])
def test_forward_matches_reference(seed, degree):
    g, cams = make_scene(seed=seed, degree=degree)
    out = render(g, cams, CPU)
    ref = render_reference(g, cams)
    # float32 kernels vs float64 reference: 1e-4 absolute on values of order 1.
    compare_images(out, ref, atol=1e-4)
    assert out.backend == "cpu" and out.rgb.shape == (2, 29, 37, 3)


def test_forward_background_and_no_features():
    g, cams = make_scene(features=0, seed=5)
    settings = RenderSettings(backend="cpu", background=(0.2, 0.5, 1.0))
    out = render(g, cams, settings)
    ref = render_reference(g, cams, background=(0.2, 0.5, 1.0))
    assert out.features is None
    compare_images(out, ref, atol=1e-4)


def test_transmittance_stop_with_dense_opaque_stack():
    """Many opaque Gaussians on one pixel: blending must stop before T < 1e-4, as in gsplat."""
    g, cams = make_scene(n=150, seed=7, spread=0.15, opacity=(0.9, 0.98))
    out = render(g, cams, CPU)
    ref = render_reference(g, cams)
    assert (1 - out.alpha).min() < 1e-3  # the stop rule is exercised
    compare_images(out, ref, atol=1e-4)


def test_near_far_culling():
    g, cams = make_scene(seed=8)
    out = render(g, cams, RenderSettings(backend="cpu", near_m=2.9, far_m=3.2))
    ref = render_reference(g, cams, near=2.9, far=3.2)
    compare_images(out, ref, atol=1e-4)


def test_empty_scene():
    cams = Cameras(make_K(20, 20, 16, 12), torch.eye(4), 32, 24)
    out = render(Gaussians.empty(num_features=3), cams, CPU)
    assert out.rgb.abs().max() == 0 and out.alpha.abs().max() == 0 and out.features.shape == (1, 24, 32, 3)


@pytest.mark.parametrize("degree", [0, 3])
def test_gradients_match_reference_autograd(degree):
    g, cams = make_scene(n=40, seed=11, degree=degree, features=3)
    names = ("means", "quats", "scales", "opacities", "sh", "features")

    def grads(render_fn, dtype):
        leaves = {n: getattr(g, n).detach().to(dtype).requires_grad_(True) for n in names}
        gg = Gaussians(**leaves)
        out = render_fn(gg)
        w = torch.Generator().manual_seed(0)
        loss = 0
        for key in ("rgb", "features", "depth", "alpha"):
            t = out[key] if isinstance(out, dict) else getattr(out, key)
            loss = loss + (t * torch.rand(t.shape, generator=w, dtype=torch.float64).to(t.dtype)).sum()
        loss.backward()
        return {n: leaves[n].grad.double() for n in names}

    fast = grads(lambda gg: render(gg, cams, CPU), torch.float32)
    ref = grads(lambda gg: render_reference(gg, cams), torch.float64)
    for n in names:
        # float32 accumulation over ~1e3 pixel contributions: 1e-3 relative to the gradient's scale.
        scale = ref[n].abs().max().item() + 1e-12
        err = (fast[n] - ref[n]).abs().max().item()
        assert err / scale < 1e-3, f"grad {n}: rel error {err / scale:.2e}"
        assert ref[n].abs().max() > 0, f"grad {n} is zero: the test would not catch errors"


def test_auto_picks_cpu_without_cuda():
    g, cams = make_scene(seed=1)
    if torch.cuda.is_available():
        pytest.skip("CUDA present: auto would pick gsplat")
    assert render(g, cams, RenderSettings(backend="auto")).backend == "cpu"


def test_unknown_backend_is_a_clear_error():
    g, cams = make_scene(seed=1)
    with pytest.raises(ValueError, match="unknown renderer backend"):
        render(g, cams, RenderSettings(backend="vulkan"))


def test_render_interface_imports_without_numba():
    code = "import sys, gssplat_ros.render; assert 'numba' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


@pytest.mark.parametrize("seed", [0, 8])
def test_numba_projection_matches_torch_projection(seed):
    """Inference projects in numba, training in torch: same culling, same 2D Gaussians."""
    from gssplat_ros.render.cpu import _project_numba
    from gssplat_ros.render.projection import project_gaussians

    g, cams = make_scene(n=300, seed=seed, spread=2.5)  # wide: some off-screen and behind the camera
    for v in range(len(cams)):
        args = (g.means, g.quats, g.scales, cams.K[v], cams.cam_from_world[v], cams.width, cams.height, 0.5, 4.0, 0.3)
        ref, fast = project_gaussians(*args), _project_numba(*args)
        kept = ref.radii > 0
        assert 0 < kept.sum() < len(kept)  # both culling branches are exercised
        assert torch.equal(ref.radii, fast.radii)
        torch.testing.assert_close(fast.means2d[kept], ref.means2d[kept], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(fast.conics[kept], ref.conics[kept], rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(fast.depths, ref.depths, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(fast.dirs, ref.dirs, rtol=1e-5, atol=1e-6)


def test_inference_and_training_paths_render_the_same():
    g, cams = make_scene(seed=3, degree=2)
    with torch.no_grad():
        fast = render(g, cams, CPU)  # numba projection
    g.means.requires_grad_(True)
    slow = render(g, cams, CPU)  # torch projection, differentiable
    for name in ("rgb", "depth", "alpha", "features"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name).detach(), rtol=1e-4, atol=1e-4)
