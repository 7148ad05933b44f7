"""Training-time geometry dropout: a dropped window's semantic branch runs exactly as `--ablate-geometry`."""

from __future__ import annotations

import copy

import torch

from gssplat_ros.model import GSsplatNet, ModelConfig
from tests.test_model_common import make_window, net_inputs


def semantic_logits(net: GSsplatNet, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return net(*net_inputs(batch))["sem_logits"]


def test_dropped_windows_equal_the_ablation_and_inference_never_drops():
    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", num_classes=5, semantic_geometry=True))
    with torch.no_grad():  # a live embedding (its last layer may start at zero)
        for p in net.semantic_geometry.parameters():
            p.add_(0.1 * torch.randn_like(p))
    batch = make_window()
    ablated = copy.deepcopy(net).train()
    ablated.semantic_geometry = None  # what `gssplat eval --ablate-geometry` does
    net.train()
    full = semantic_logits(net, batch)
    net.geometry_dropout = 1.0
    assert torch.allclose(semantic_logits(net, batch), semantic_logits(ablated, batch), atol=1e-6)
    assert not torch.allclose(full, semantic_logits(ablated, batch), atol=1e-4)  # the cues do change the logits
    net.eval()
    net.geometry_dropout = 0.0
    eval_full = semantic_logits(net, batch)
    net.geometry_dropout = 1.0
    assert torch.allclose(semantic_logits(net, batch), eval_full)  # inference never drops the cues
