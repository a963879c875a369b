"""Zero-cost proxies: one number from a network and a minibatch, without any training.

Each function takes a network it may modify (the caller passes a private copy, in train mode,
so BN uses batch statistics) and returns a float, larger = better as the papers use them.
"Weights" are the weight tensors of the convolution and linear layers (BN parameters and biases
are not scored), as in Abdelfattah et al. 2021.

- :func:`grad_norm` — Abdelfattah, Mehrotra, Dudziak, Lane, "Zero-Cost Proxies for Lightweight
  NAS", ICLR 2021: sum over weight tensors of the L2 norm of dL/dW, L = cross-entropy on the
  batch.
- :func:`snip` — Lee, Ajanthan, Torr, "SNIP: Single-shot Network Pruning based on Connection
  Sensitivity", ICLR 2019, summed over the network as in Abdelfattah et al.: sum |W * dL/dW|.
- :func:`synflow` — Tanaka, Kunin, Yamins, Ganguli, "Pruning neural networks without any data by
  iteratively conserving synaptic flow", NeurIPS 2020, as a NAS score (Abdelfattah et al.):
  every parameter replaced by its absolute value, double precision, BN layers bypassed (batch
  statistics of a constant input would zero every activation; Abdelfattah et al.'s default
  ``synflow`` also drops BN), input = one all-ones image, R = sum of the logits, score =
  sum W * dR/dW. Uses no data (only the image shape).
- :func:`jacov` — Mellor, Turner, Storkey, Crowley, "Neural Architecture Search without
  Training", arXiv v1 (2020): the input Jacobians J_i = d(sum_c f_c(x_i))/dx_i of the batch,
  their N x N correlation matrix with eigenvalues lambda, score = -sum(log(lambda + k) +
  1/(lambda + k)), k = 1e-5 (the common formulation, also in Abdelfattah et al.). NaN when a
  Jacobian is constant or the output ignores the input (correlation undefined).
- :func:`nwot` — Mellor, Turner, Storkey, Crowley, "Neural Architecture Search without
  Training", ICML 2021 (NASWOT): binary codes c_i (1 where a ReLU output is positive, over every
  ReLU module) of the batch, kernel K_H[i, j] = N_A - Hamming(c_i, c_j) with N_A the number of
  ReLU units, score = log|det K_H| (via ``slogdet``; -inf when K_H is singular).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Batch

__all__ = ["JACOV_K", "grad_norm", "jacov", "nwot", "scored_weights", "snip", "synflow"]

#: The constant k of the Jacobian-covariance score.
JACOV_K = 1e-5
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def scored_weights(net: nn.Module) -> list[nn.Parameter]:
    """The weight tensors the gradient proxies score: those of conv and linear layers."""
    return [m.weight for m in net.modules() if isinstance(m, _WEIGHTED)]


def _logits(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The logits of a forward pass (DARTS networks with an auxiliary head return a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def _loss_gradients(net: nn.Module, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(W, dL/dW) for every scored weight, L = mean cross-entropy on ``batch``; weights the
    loss does not reach get a zero gradient."""
    x, y = batch
    net.zero_grad(set_to_none=True)
    F.cross_entropy(_logits(net(x)), y).backward()
    return [(w.detach(), torch.zeros_like(w) if w.grad is None else w.grad)
            for w in scored_weights(net)]


def _total(values: list[torch.Tensor]) -> float:
    return float(torch.stack([v.double() for v in values]).sum()) if values else 0.0


def grad_norm(net: nn.Module, batch: Batch) -> float:
    """Sum over weight tensors of ||dL/dW||_2 (Abdelfattah et al. 2021)."""
    return _total([g.norm() for _, g in _loss_gradients(net, batch)])


def snip(net: nn.Module, batch: Batch) -> float:
    """Sum over all weights of |W * dL/dW| (Lee et al. 2019, as in Abdelfattah et al. 2021)."""
    return _total([(w * g).abs().sum() for w, g in _loss_gradients(net, batch)])


def _bypass_batch_norm(net: nn.Module) -> None:
    """Replace every BN layer of ``net`` by an identity, in place."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())


def synflow(net: nn.Module, image_shape: torch.Size | tuple[int, ...]) -> float:
    """Sum over all weights of W * dR/dW with |parameters|, no BN, double precision and an
    all-ones input of ``image_shape`` (C, H, W) (Tanaka et al. 2020). Modifies ``net``."""
    _bypass_batch_norm(net)
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    device = next(net.parameters()).device
    x = torch.ones(1, *image_shape, dtype=torch.float64, device=device)
    _logits(net(x)).sum().backward()
    return _total([(w.detach() * w.grad).sum() for w in scored_weights(net)
                   if w.grad is not None])


def jacov(net: nn.Module, batch: Batch) -> float:
    """-sum(log(l + k) + 1/(l + k)) over the eigenvalues l of the correlation matrix of the
    batch's input Jacobians (Mellor et al. 2020, v1); NaN when it is undefined."""
    x = batch[0].detach().clone().requires_grad_(True)
    total = _logits(net(x)).sum()
    if not total.requires_grad:
        return math.nan
    (jacobians,) = torch.autograd.grad(total, x, allow_unused=True)
    if jacobians is None:  # the output ignores the input (e.g. a disconnected NB201 cell)
        return math.nan
    flat = jacobians.reshape(len(x), -1).double()
    corr = torch.corrcoef(flat)
    if not torch.isfinite(corr).all():
        return math.nan
    eigenvalues = torch.linalg.eigvalsh(corr).clamp(min=0.0)  # PSD; clamp rounding below 0
    shifted = eigenvalues + JACOV_K
    return -float((torch.log(shifted) + 1.0 / shifted).sum())


def nwot(net: nn.Module, batch: Batch) -> float:
    """log|det K_H|, K_H = N_A - Hamming distances of the batch's binary ReLU codes
    (Mellor et al. 2021, NASWOT)."""
    x = batch[0]
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)

    def accumulate(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        codes = (output.detach() > 0).reshape(len(x), -1).double()
        kernel.add_(codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T)

    hooks = [m.register_forward_hook(accumulate) for m in net.modules()
             if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)
