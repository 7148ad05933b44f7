"""Slow float64 brute-force reference of the rasteriser semantics (tests only).

Every Gaussian is evaluated at every pixel, in depth order, with the same rules as the fast
backends: EWA projection with gsplat's Jacobian clamp, 0.3 px^2 dilation, 3-sigma radius and tile
coverage (a Gaussian reaches only pixels of tiles its radius rectangle touches, as in gsplat),
alpha = min(0.99, o exp(-sigma)), fragments below 1/255 skipped, a pixel stops before the
fragment that would take its transmittance below 1e-4. Differentiable by torch autograd.
"""

from __future__ import annotations

import math

import torch

from gssplat_ros.render.projection import eval_sh


def _rotmat(q):
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def render_reference(g, cameras, near=0.01, far=1e10, eps2d=0.3, background=None, tile=16, sh_degree=None):
    """Returns dict rgb [V,H,W,3], features [V,H,W,D] or None, depth [V,H,W], alpha [V,H,W] (float64)."""
    f64 = lambda t: t.double()  # noqa: E731
    means, quats, scales, opac, sh = map(f64, (g.means, g.quats, g.scales, g.opacities, g.sh))
    feats = None if g.features is None else f64(g.features)
    degree = g.sh_degree if sh_degree is None else sh_degree
    W, H = cameras.width, cameras.height
    outs = {"rgb": [], "features": [], "depth": [], "alpha": []}
    for v in range(len(cameras)):
        K = f64(cameras.K[v])
        world_from_cam = f64(cameras.world_from_cam[v])
        rot = world_from_cam[:3, :3].T
        trans = -rot @ world_from_cam[:3, 3]
        p = means @ rot.T + trans
        x, y, z = p.unbind(-1)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        ok = (z > near) & (z < far)
        zs = torch.where(ok, z, torch.ones_like(z))
        limx_p, limx_n = (W - cx) / fx + 0.3 * 0.5 * W / fx, cx / fx + 0.3 * 0.5 * W / fx
        limy_p, limy_n = (H - cy) / fy + 0.3 * 0.5 * H / fy, cy / fy + 0.3 * 0.5 * H / fy
        tx = zs * torch.minimum(torch.maximum(x / zs, -limx_n), limx_p)
        ty = zs * torch.minimum(torch.maximum(y / zs, -limy_n), limy_p)
        J = torch.zeros(len(z), 2, 3, dtype=torch.float64)
        J[:, 0, 0], J[:, 0, 2] = fx / zs, -fx * tx / zs**2
        J[:, 1, 1], J[:, 1, 2] = fy / zs, -fy * ty / zs**2
        M = _rotmat(quats) @ torch.diag_embed(scales)
        cov = J @ rot @ (M @ M.transpose(1, 2)) @ rot.T @ J.transpose(1, 2)
        cov = cov + eps2d * torch.eye(2, dtype=torch.float64)
        det = torch.linalg.det(cov)
        ok = ok & (det > 0)
        inv = torch.linalg.inv(torch.where(ok[:, None, None], cov, torch.eye(2, dtype=torch.float64)))
        mu = torch.stack([fx * x / zs + cx, fy * y / zs + cy], -1)
        with torch.no_grad():
            a, c = cov[:, 0, 0], cov[:, 1, 1]
            mid = 0.5 * (a + c)
            radius = torch.ceil(3 * torch.sqrt(mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.1))))
            ok = ok & (radius > 0)
            ok = ok & (mu[:, 0] + radius > 0) & (mu[:, 0] - radius < W) & (mu[:, 1] + radius > 0) & (mu[:, 1] - radius < H)
            tiles_x, tiles_y = math.ceil(W / tile), math.ceil(H / tile)
            tx0 = torch.clamp(torch.floor((mu[:, 0] - radius) / tile), 0, tiles_x)
            tx1 = torch.clamp(torch.ceil((mu[:, 0] + radius) / tile), 0, tiles_x)
            ty0 = torch.clamp(torch.floor((mu[:, 1] - radius) / tile), 0, tiles_y)
            ty1 = torch.clamp(torch.ceil((mu[:, 1] + radius) / tile), 0, tiles_y)
        cam_center = world_from_cam[:3, 3]
        dirs = (means - cam_center) / (means - cam_center).norm(dim=-1, keepdim=True)
        colors = torch.clamp_min(eval_sh(sh, dirs, degree) + 0.5, 0.0)
        vals = [colors] + ([feats] if feats is not None else []) + [z[:, None]]
        values = torch.cat(vals, -1)  # [N, Dv]

        py, px = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
        pix = torch.stack([px.reshape(-1) + 0.5, py.reshape(-1) + 0.5], -1)  # [P, 2]
        ptx, pty = (pix[:, 0] // tile)[:, None], (pix[:, 1] // tile)[:, None]
        covered = (ptx >= tx0) & (ptx < tx1) & (pty >= ty0) & (pty < ty1) & ok  # [P, N]
        d = mu[None, :, :] - pix[:, None, :]  # [P, N, 2]
        quad = inv[None, :, 0, 0] * d[..., 0] ** 2 + inv[None, :, 1, 1] * d[..., 1] ** 2
        sigma = 0.5 * quad + inv[None, :, 0, 1] * d[..., 0] * d[..., 1]
        alpha = torch.clamp(opac[None] * torch.exp(-sigma), max=0.99)
        use = covered & (sigma >= 0) & (alpha >= 1.0 / 255.0)
        P = pix.shape[0]
        T = torch.ones(P, dtype=torch.float64)
        acc = torch.zeros(P, values.shape[1], dtype=torch.float64)
        alive = torch.ones(P, dtype=torch.bool)
        for i in torch.argsort(z.detach()).tolist():
            a_i = torch.where(use[:, i] & alive, alpha[:, i], torch.zeros_like(alpha[:, i]))
            nxt = T * (1 - a_i)
            stop = nxt < 1e-4
            alive = alive & ~stop
            a_i = torch.where(stop, torch.zeros_like(a_i), a_i)
            acc = acc + (a_i * T)[:, None] * values[i][None]
            T = T * (1 - a_i)
        bg = torch.zeros(3, dtype=torch.float64) if background is None else torch.as_tensor(background, dtype=torch.float64)
        a_out = (1 - T).reshape(H, W)
        outs["rgb"].append((acc[:, :3] + T[:, None] * bg).reshape(H, W, 3))
        if feats is not None:
            outs["features"].append(acc[:, 3:-1].reshape(H, W, -1))
        dsum = acc[:, -1].reshape(H, W)
        outs["depth"].append(torch.where(a_out > 0, dsum / a_out.clamp_min(1e-10), torch.zeros_like(a_out)))
        outs["alpha"].append(a_out)
    return {k: (torch.stack(v) if v else None) for k, v in outs.items()}
