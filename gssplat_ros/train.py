"""Training: `gssplat train --config config/train/tiny_sensor/2_full_losses.yaml [--resume] [--override k=v ...]`.

Usage (DDP on CPU or GPU): `torchrun --nproc_per_node 2 -m gssplat_ros.commands.train_cmd --config ...`.
One window per step per process (context views + rendered targets), the released GSsplat losses,
Adam with warm-up and cosine decay, gradient clipping. Rank 0 validates on the held-out `val` split
(never `test`), writes `last` and `best` checkpoints (safetensors + config JSON), a CSV and a
TensorBoard log, the resolved config, the git revision and metrics.json. With `optim.ema_decay` it also
keeps an exponential moving average of the weights (torch's AveragedModel), validates that, chooses
`best` from it and writes it as the `ema` checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import Tensor

from gssplat_ros.cameras import Cameras, rigid_inverse
from gssplat_ros.config import ConfigError, TrainConfig, check_partial, load_typed_config, to_dict
from gssplat_ros.data import WindowDataset
from gssplat_ros.data.augment import Augmentation, AugmentedWindows
from gssplat_ros.data.labels import CLASS_NAMES
from gssplat_ros.data.windows import MixedWindows
from gssplat_ros.evaluate import abs_rel
from gssplat_ros.metrics import image_metrics, semantic_metrics
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.checkpoint import load_weights, save_checkpoint
from gssplat_ros.model.config import reference_downscale
from gssplat_ros.model.losses import (
    LossConfig,
    compute_losses,
    depth_level_loss,
    lovasz_softmax,
    render_targets,
    weighted_cross_entropy,
)
from gssplat_ros.model.semantic_scales import downscale_inputs, fuse_semantic_logits
from gssplat_ros.prediction import EncoderInputs, Prediction
from gssplat_ros.render import RenderSettings
from gssplat_ros.weights import checkpoint_stem

log = logging.getLogger(__name__)
VAL_COLUMNS = ("psnr", "miou", "depth_absrel")  # validation metrics in log.csv (each stage fills its own)


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return DistInfo(rank=int(os.environ.get("RANK", "0")), world=world)


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lr_at(step: int, cfg: TrainConfig, progress: float) -> float:
    """Linear warm-up, then cosine decay over `progress` (0..1 of the step or time budget)."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    cos = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return o.lr * (o.final_lr_fraction + (1.0 - o.final_lr_fraction) * cos)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """TrainConfig.device -> a torch device; 'cuda' without CUDA is a ConfigError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but CUDA is not available (use device: cpu or auto)")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def batch_to(batch: dict, device: torch.device) -> dict:
    """A window dict with every tensor on `device` (other values as they are)."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def amp_context(amp: str, device: torch.device):
    """Autocast for TrainConfig.amp ('bf16': bfloat16 on CUDA), or a no-op context."""
    enabled = amp == "bf16" and device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _to_float32(value):
    """Floating tensors (also inside lists, e.g. the depth cascade's levels) as float32; the rest as is."""
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float32(v) for v in value)
    return value.float() if torch.is_tensor(value) and torch.is_floating_point(value) else value


def window_forward(net, batch: dict, depth_mode: str, settings: RenderSettings, semantic_reference_width: int = 0,
                   amp: str = "none"):  # fmt: skip
    """Encoder on the context views, then render the targets. Returns (outputs, RenderedTargets).

    With `semantic_reference_width` (a plain GSsplatNet only, as in validation) the semantic Gaussians get the
    fused multi-scale logits that inference gives them (`fused_semantic_logits`). With amp 'bf16' the encoder
    runs under autocast and its outputs return to float32, so the renderer always projects and blends fp32."""
    wfc = batch["context_world_from_cam"]
    depth = batch["context_depth"] if depth_mode == "sensor" else None
    device = batch["context_images"].device
    with amp_context(amp, device):
        out = net(batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc), depth)
    if amp != "none":
        out = {k: _to_float32(v) for k, v in out.items()}
    if semantic_reference_width > 0:
        out = dict(out)
        out["sem_logits"] = fused_semantic_logits(net.semantic_logits, batch, depth, out["sem_logits"],
                                                  semantic_reference_width)  # fmt: skip
    h, w = batch["target_images"].shape[-2:]
    cams = Cameras(batch["target_K"], batch["target_world_from_cam"], w, h)
    colour_gaussians = getattr(net, "module", net).cfg.colour_gaussians  # DDP wraps the network
    return out, render_targets(Prediction.from_outputs(out, colour_gaussians), cams, settings)


def init_from_checkpoint(net, path) -> int:
    """Copy every tensor whose name and shape match from a checkpoint (e.g. a sensor-depth warm-up into
    an estimated-depth model, whose depth network then starts fresh). A conv weight that only gained input
    channels (e.g. `photometric_cost` on an older checkpoint) keeps its old channels and starts the new ones at
    zero, so the grown network computes what the old one did. Returns the number copied."""
    from safetensors.torch import load_file

    weights = Path(checkpoint_stem(path)).with_suffix(".safetensors")
    if not weights.exists():
        raise FileNotFoundError(f"init_from: checkpoint weights not found: {weights}")
    source = load_file(str(weights))
    own = net.state_dict()
    if any(k.startswith("depth_encoder.") for k in source) and getattr(net, "depth_net", None) is not None \
            and getattr(net, "depth_encoder", None) is None:
        # the composed model's cascade was trained on its own backbone, not on the shared encoder it would land on
        raise ValueError(f"init_from: {path} is a composed model (its cascade reads depth_encoder.*); this network "
                         "has no depth_encoder: set model_overrides depth_encoder: true, or init from an "
                         "uncomposed estimated checkpoint (docs/training.md, 'tiny_estimated')")
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    for k, v in source.items():  # a layer that gained input channels (e.g. photometric_cost): old ones, new at 0
        if k in own and k not in matched and _grew_inputs(v.shape, own[k].shape):
            grown = torch.zeros_like(own[k])
            grown[:, : v.shape[1]] = v
            matched[k] = grown
            log.info("init_from: %s grows from %d to %d input channels (the new ones start at zero)",
                     k, v.shape[1], own[k].shape[1])
    own.update(matched)
    net.load_state_dict(own)
    return len(matched)


def _grew_inputs(old: torch.Size, new: torch.Size) -> bool:
    """A conv weight [out, in, k...] whose only change is more input channels."""
    return (len(old) == len(new) >= 3 and old[0] == new[0] and old[2:] == new[2:] and old[1] < new[1])


def freeze_except(net: torch.nn.Module, prefixes: list[str]) -> None:
    """Train only parameters under the given module-name prefixes (e.g. `semantic_head`); [] trains all.

    Used to fine-tune the semantic branch of a shipped model while its colour Gaussians stay exactly as
    they were. A prefix that names no parameter is a config error.
    """
    if not prefixes:
        return
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    names = [name for name, _ in net.named_parameters()]
    for prefix in prefixes:
        if not any(under(n, prefix) for n in names):
            roots = sorted({n.split(".")[0] for n in names})
            raise ConfigError(f"trainable: no parameters under {prefix!r}; modules: {roots}")
    for name, param in net.named_parameters():
        param.requires_grad_(any(under(name, p) for p in prefixes))
    kept = sum(p.numel() for p in net.parameters() if p.requires_grad)
    log.info("training %d of %d parameters (%s)", kept, sum(p.numel() for p in net.parameters()), ", ".join(prefixes))


def fused_semantic_logits(semantic_fn, batch: dict, depth: Optional[Tensor], full_logits: Tensor,
                          reference_width: int) -> Tensor:  # fmt: skip
    """The context window's semantic-Gaussian logits as multi-scale inference fuses them: `full_logits`
    ([V, H, W, C], the full-size pass) averaged with a pass at 1/f of the size, f =
    reference_downscale(W, H, reference_width); unchanged when f = 1. `semantic_fn` is
    GSsplatNet.semantic_logits or a SemanticOnly module; gradients flow through both passes."""
    images = batch["context_images"]  # [V, 3, H, W]
    height, width = images.shape[-2:]
    factor = reference_downscale(width, height, reference_width)
    if factor == 1:
        return full_logits
    wfc = batch["context_world_from_cam"]
    small = downscale_inputs(EncoderInputs(images, batch["context_K"], wfc, rigid_inverse(wfc), depth), factor)
    _, small_logits = semantic_fn(small.images, small.K, small.world_from_cam, small.cam_from_world, small.depth)
    return fuse_semantic_logits([full_logits, small_logits], height, width)  # [V, H, W, C]


def semantic_2d_loss(net, batch: dict, model_cfg: ModelConfig, loss_cfg: LossConfig, semantic_reference_width: int = 0):
    """Warm-up stage: class-weighted CE on the context views only, of the semantic decoder's 2D logits and of
    the per-pixel logits of the semantic Gaussians (each context pixel's Gaussian should carry its label).

    No rendering, so a step costs a fraction of a full one and the semantic branch sees many more
    images per minute; the full stage then trains everything through the renderer.
    """

    wfc = batch["context_world_from_cam"]
    depth = batch["context_depth"] if model_cfg.depth_mode == "sensor" else None
    # a (DDP-wrapped) SemanticOnly: the colour branch is skipped
    context_logits, sem_logits = net(batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc), depth)
    # the 2D decoder's logits stay single-scale (inference never renders them); the Gaussians' are fused
    sem_logits = fused_semantic_logits(net, batch, depth, sem_logits, semantic_reference_width)  # [V, H, W, C]
    logits = context_logits.permute(0, 2, 3, 1).reshape(-1, model_cfg.num_classes)  # [V*H*W, C]
    ce_2d = weighted_cross_entropy(logits, batch["context_labels"], loss_cfg, "context labels")
    gaussian_logits = sem_logits.reshape(-1, model_cfg.num_classes)  # [V*H*W, C]
    ce_gaussians = weighted_cross_entropy(gaussian_logits, batch["context_labels"], loss_cfg, "context labels")
    terms = {"context_semantic": ce_2d.detach(), "semantic": ce_gaussians.detach()}
    total = ce_2d + ce_gaussians
    if loss_cfg.lovasz_weight > 0:  # per image, as the protocol's mIoU is taken per image
        labels = batch["context_labels"].reshape(sem_logits.shape[0], -1)  # [V, H*W]
        lovasz = torch.stack([lovasz_softmax(sem_logits[v].reshape(-1, model_cfg.num_classes), labels[v],
                                             loss_cfg.ignore_index) for v in range(sem_logits.shape[0])]).mean()
        terms["lovasz"] = lovasz.detach()
        total = total + loss_cfg.lovasz_weight * lovasz
    return total, terms


def depth_only_loss(net, batch: dict, loss_cfg: LossConfig):
    """Depth stage (estimated mode): the cascade-level depth loss alone, encoder + cost volume only.

    With `trainable: [depth_net]` the cost volume gets its own schedule, undiluted by the render losses,
    while every colour and semantic weight stays fixed. A step costs about as much as a full one here
    (V=4 160x120: ~1.2 s against ~1.4 s on 2 CPU threads; the 3D regularisers dominate both).
    """

    wfc = batch["context_world_from_cam"]
    levels = net(batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc))  # a (DDP-wrapped) DepthOnly
    loss = depth_level_loss(levels, batch["context_depth"], loss_cfg)
    return loss, {"depth": loss.detach()}


class DepthOnly(torch.nn.Module):
    """The encoder + cost-volume part of a network as a module, so DDP syncs the depth stage's gradients."""

    def __init__(self, net: GSsplatNet):
        super().__init__()
        self.net = net

    def forward(self, images: Tensor, K: Tensor, world_from_cam: Tensor, cam_from_world: Tensor) -> list[Tensor]:
        return self.net.estimate_depth(images, K, world_from_cam, cam_from_world)


class SemanticOnly(torch.nn.Module):
    """The semantic path of a network (GSsplatNet.semantic_logits) as a module, for the 2D semantic stage."""

    def __init__(self, net: GSsplatNet):
        super().__init__()
        self.net = net

    def forward(self, images: Tensor, K: Tensor, world_from_cam: Tensor, cam_from_world: Tensor,
                depth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        return self.net.semantic_logits(images, K, world_from_cam, cam_from_world, depth)


@torch.no_grad()
def validate_depth(net, dataset, windows: int) -> dict:
    """Mean context-view AbsRel of the finest cascade level (the eval's `abs_rel`, valid GT pixels)."""

    was_training = net.training
    net.eval()
    errors = []
    device = next(net.parameters()).device
    for i in range(min(windows, len(dataset))):
        batch = batch_to(dataset[i], device)
        wfc = batch["context_world_from_cam"]
        depth = net.estimate_depth(batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc))[-1]
        errors.append(abs_rel(depth.cpu().numpy(), batch["context_depth"].cpu().numpy()))  # [V, 1, H, W] each
    net.train(was_training)
    return {"depth_absrel": float(np.mean(errors))}


def validation_score(net, dataset, stage: str, depth_mode: str, settings: RenderSettings, windows: int,
                     semantic_reference_width: int = 0):  # fmt: skip
    """(metrics, score) of the stage's validation; a higher score is better (chooses `best`)."""
    if stage == "depth":
        val = validate_depth(net, dataset, windows)
        return val, -val["depth_absrel"]
    val = validate(net, dataset, depth_mode, settings, windows, semantic_reference_width)
    return val, val["psnr"] / 30.0 + val["miou"]  # one number: ~1 dB of PSNR ~ 0.03 mIoU


@torch.no_grad()
def validate(net, dataset, depth_mode: str, settings: RenderSettings, windows: int,
             semantic_reference_width: int = 0) -> dict:  # fmt: skip

    was_training = net.training
    net.eval()
    psnrs, mious = [], []
    device = next(net.parameters()).device
    for i in range(min(windows, len(dataset))):
        batch = dataset[i]  # targets stay on the CPU for the numpy metrics
        _, r = window_forward(net, batch_to(batch, device), depth_mode, settings, semantic_reference_width)
        for t in range(r.rgb.shape[0]):
            valid = (batch["target_depth"][t] > 0).numpy()
            gt = batch["target_images"][t].permute(1, 2, 0).numpy()
            psnrs.append(image_metrics(r.rgb[t].clamp(0, 1).cpu().numpy(), gt, valid)["psnr"])
            labels = r.logits[t].argmax(-1).cpu().numpy()
            mious.append(semantic_metrics(labels, batch["target_labels"][t].numpy())["miou"])
    net.train(was_training)
    return {"psnr": float(np.mean(psnrs)), "miou": float(np.nanmean(mious))}


def training_windows(d, seed: int):
    """The training split of `d.root` at width x height, mixed with every `d.extra` set (multi-scale),
    augmented when `d.flip_prob` or `d.color_jitter` is set.

    An extra set's `repeat: N` lists it N times, so a random sampler draws it N times as often (for
    example the benchmark's image size, of which there are fewer rooms)."""

    aug = Augmentation(flip_prob=float(d.flip_prob), color_jitter=float(d.color_jitter))
    if not (0.0 <= aug.flip_prob <= 1.0 and 0.0 <= aug.color_jitter < 1.0):
        raise ConfigError(f"data.flip_prob must be in [0, 1] and data.color_jitter in [0, 1), got "
                          f"{aug.flip_prob} and {aug.color_jitter}")  # fmt: skip
    windows = _mixed_training_windows(d, seed)
    return AugmentedWindows(windows, aug, seed) if aug.enabled else windows


def _mixed_training_windows(d, seed: int):
    def windows(root, width, height):
        return WindowDataset(root, d.format, split="train", views=d.views, targets=d.targets,
                             size=(width, height), pool_factor=d.pool_factor, seed=seed)

    main = windows(d.root, d.width, d.height)
    if not d.extra:
        return main
    sets = [main]
    for i, extra in enumerate(d.extra):
        if not isinstance(extra, dict) or set(extra) - {"root", "width", "height", "repeat"} or "root" not in extra:
            raise ConfigError(f"data.extra[{i}]: expected {{root, width, height[, repeat]}}, got {extra!r}")
        repeat = extra.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise ConfigError(f"data.extra[{i}].repeat: expected a whole number >= 1, got {repeat!r}")
        extra_set = windows(extra["root"], int(extra.get("width", d.width)), int(extra.get("height", d.height)))
        sets.extend([extra_set] * repeat)
    return MixedWindows(sets)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, resume: bool = False, progress_bar: bool = False) -> dict:
    """Run training; returns the final metrics (rank 0) or {} (other ranks)."""

    dinfo = setup_distributed()
    _seed_everything(cfg.seed + dinfo.rank)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    model_cfg = ModelConfig.preset(cfg.model_preset, **check_partial(ModelConfig, cfg.model_overrides, "model_overrides"))
    if not model_cfg.class_names and cfg.data.format == "scannet" and model_cfg.num_classes == len(CLASS_NAMES):
        # ScanNet-layout data (real or generated) uses the ScanNet-20 ids: record their names in the checkpoint
        model_cfg = dataclasses.replace(model_cfg, class_names=CLASS_NAMES)
    loss_cfg = LossConfig(**check_partial(LossConfig, cfg.loss_overrides, "loss_overrides"))
    settings = RenderSettings(backend=cfg.render_backend)
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    net = GSsplatNet(model_cfg)
    if not 0.0 <= cfg.geometry_dropout <= 1.0:
        raise ValueError(f"geometry_dropout must be in [0, 1], got {cfg.geometry_dropout}")
    net.geometry_dropout = cfg.geometry_dropout
    if cfg.init_from:
        copied = init_from_checkpoint(net, cfg.init_from)
        log.info("initialised %d tensors from %s", copied, cfg.init_from)
    net.to(device)
    freeze_except(net, cfg.trainable)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.optim.lr)
    ema = make_ema(net, cfg.optim.ema_decay)
    step, best, elapsed_before = 0, -math.inf, 0.0
    state_path = out / "last_state.pt"
    if resume:
        if not state_path.exists():
            raise FileNotFoundError(f"--resume: no training state at {state_path}")
        load_weights(net, out / "last")
        if ema is not None:
            load_weights(ema.module, out / "ema" if (out / "ema.safetensors").exists() else out / "last")
            ema.n_averaged.fill_(1)  # an average already: the next update blends into it instead of copying over it
        state = torch.load(state_path, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        step, best, elapsed_before = int(state["step"]), float(state["best"]), float(state["elapsed_s"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at step %d", out, step)
    if cfg.stage == "depth" and model_cfg.depth_mode != "estimated":
        raise ConfigError("stage 'depth' trains the cost volume: it needs model_overrides depth_mode: estimated")
    model = {"depth": DepthOnly, "semantic2d": SemanticOnly}.get(cfg.stage, lambda n: n)(net)
    if dinfo.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    d = cfg.data
    train_set = training_windows(d, cfg.seed)
    if dinfo.world > 1:
        sampler = torch.utils.data.DistributedSampler(train_set, dinfo.world, dinfo.rank, seed=cfg.seed)
    else:
        sampler = torch.utils.data.RandomSampler(train_set, generator=torch.Generator().manual_seed(cfg.seed + step))
    loader = torch.utils.data.DataLoader(train_set, batch_size=None, sampler=sampler, num_workers=d.num_workers,
                                         persistent_workers=d.num_workers > 0)
    val_set = None
    if dinfo.main:
        out.mkdir(parents=True, exist_ok=True)
        val_set = WindowDataset(d.val_root or d.root, d.format, split="val", views=d.views, targets=1,
                                size=(d.val_width or d.width, d.val_height or d.height),
                                context_stride=d.val_context_stride)
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        (out / "run.json").write_text(json.dumps({"git_revision": git_revision(), "world_size": dinfo.world,
                                                  "resumed_at_step": step if resume else None}, indent=2))
    # a fresh run starts a fresh log; --resume appends to the one it continues
    csv_file = open(out / "log.csv", "a" if resume else "w", newline="") if dinfo.main else None
    csv_out = csv.writer(csv_file) if csv_file else None
    if csv_out and (not resume or csv_file.tell() == 0):
        csv_out.writerow(["step", "elapsed_s", "lr", "total", "rgb", "semantic", "context_semantic", "group", "depth"]
                         + [f"val_{k}" for k in VAL_COLUMNS])
    tb = None
    if dinfo.main:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            log.warning("tensorboard is not installed: no TensorBoard log")
    bar = None
    if progress_bar and dinfo.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.optim.steps, initial=step, unit="step", dynamic_ncols=True)

    judged = ema.module if ema is not None else net  # the weights that validation scores and `best` keeps
    t_start = time.monotonic()
    budget_s = cfg.optim.max_minutes * 60.0
    metrics: dict = {}
    epoch = 0
    done = step >= cfg.optim.steps
    while not done:
        if dinfo.world > 1:
            sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        for batch in loader:
            batch = batch_to(batch, device)
            elapsed = elapsed_before + time.monotonic() - t_start
            progress = max(step / cfg.optim.steps, elapsed / budget_s if budget_s > 0 else 0.0)
            lr = lr_at(step, cfg, progress)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if cfg.stage == "semantic2d":
                with amp_context(cfg.amp, device):
                    total, terms = semantic_2d_loss(model, batch, model_cfg, loss_cfg, cfg.semantic_reference_width)
            elif cfg.stage == "depth":
                with amp_context(cfg.amp, device):
                    total, terms = depth_only_loss(model, batch, loss_cfg)
            else:
                outputs, renders = window_forward(model, batch, model_cfg.depth_mode, settings, amp=cfg.amp)
                total, terms = compute_losses(outputs, batch, renders, loss_cfg)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(net)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total.item():.3f}")
            val = {}
            if dinfo.main and (step % cfg.val_every == 0):
                val, score = validation_score(judged, val_set, cfg.stage, model_cfg.depth_mode, settings,
                                              cfg.val_windows, cfg.semantic_reference_width)
                if score > best:
                    best = score
                    save_checkpoint(out / "best", judged, model_cfg, {"step": step, **{f"val_{k}": v for k, v in val.items()}})
                log.info("step %d: val %s", step, " ".join(f"{k} {v:.3f}" for k, v in val.items()))
            if dinfo.main and (step % cfg.log_every == 0 or val):
                row = [step, round(elapsed, 3), lr, total.item()] + [float(terms.get(k, torch.zeros(())).detach()) for k in
                                                                    ("rgb", "semantic", "context_semantic", "group", "depth")]
                csv_out.writerow(row + [val.get(k, "") for k in VAL_COLUMNS])
                csv_file.flush()
                if tb is not None:
                    for k, v in terms.items():
                        tb.add_scalar(f"train/{k}", float(v.detach() if torch.is_tensor(v) else v), step)
                    for k, v in val.items():
                        tb.add_scalar(f"val/{k}", v, step)
            if dinfo.main and step % cfg.ckpt_every == 0:
                _save_last(out, net, model_cfg, optimizer, step, best, elapsed, ema)
            if step >= cfg.optim.steps or (budget_s > 0 and elapsed >= budget_s):
                done = True
                break
        epoch += 1
    if bar is not None:
        bar.close()
    if dinfo.main:
        elapsed = elapsed_before + time.monotonic() - t_start
        metrics, score = validation_score(judged, val_set, cfg.stage, model_cfg.depth_mode, settings,
                                          cfg.val_windows, cfg.semantic_reference_width)
        metrics.update({"step": step, "train_minutes": round(elapsed / 60.0, 2)})
        _save_last(out, net, model_cfg, optimizer, step, best, elapsed, ema)
        if score > best or not (out / "best.safetensors").exists():
            save_checkpoint(out / "best", judged, model_cfg, {"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        csv_file.close()
        if tb is not None:
            tb.close()
    if dinfo.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def make_ema(net: torch.nn.Module, decay: float):
    """An AveragedModel keeping w_ema <- decay * w_ema + (1 - decay) * w after each step; None if decay is 0."""
    if decay <= 0.0:
        return None
    if decay >= 1.0:
        raise ConfigError(f"optim.ema_decay must be in [0, 1): got {decay}")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _save_last(out: Path, net, model_cfg, optimizer, step: int, best: float, elapsed: float, ema=None) -> None:
    save_checkpoint(out / "last", net, model_cfg, {"step": step})
    if ema is not None:
        save_checkpoint(out / "ema", ema.module, model_cfg, {"step": step})
    torch.save({"optimizer": optimizer.state_dict(), "step": step, "best": best, "elapsed_s": elapsed,
                "torch_rng": torch.get_rng_state()}, out / "last_state.pt")


def main_cli(config: Optional[str], overrides: list[str], resume: bool) -> dict:
    cfg = load_typed_config(config, TrainConfig, overrides)
    check_partial(ModelConfig, cfg.model_overrides, "model_overrides")  # fail before any data is read
    check_partial(LossConfig, cfg.loss_overrides, "loss_overrides")
    return train(cfg, resume=resume, progress_bar=os.isatty(2))
