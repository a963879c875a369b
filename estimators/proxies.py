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
- :func:`l2_norm` — the weight-magnitude baseline of Abdelfattah et al. 2021 and
  NAS-Bench-Suite-Zero (Krishnakumar et al. 2022): sum over weight tensors of ||W||_2. Uses
  no data.
- :func:`plain` — Mozer & Smolensky 1989 "skeletonization" first-order saliency, as a NAS score
  in Abdelfattah et al. 2021: sum over all weights of W * dL/dW (signed, unlike snip).
- :func:`fisher` — Turner, Crowley, O'Boyle, Storkey, Gray, "BlockSwap: Fisher-guided Block
  Substitution for Network Compression on a Budget", ICLR 2020 (the channel saliency of Theis et
  al. 2018): for every channel c of the output a of each conv and linear layer,
  0.5 * mean over the batch of (sum over spatial positions of a * dL/da)^2, summed over
  channels and layers.
- :func:`grasp` — Wang, Zhang, Grosse, "Picking Winning Tickets Before Training by Preserving
  Gradient Flow", ICLR 2020: per weight S = -W * (H g), g = dL/dW, H the Hessian of L, H g by
  double backprop; summed over the network with the paper's sign, sum(-W * Hg), as
  Abdelfattah et al. 2021 and NAS-Bench-Suite-Zero store it (our values have the stored ones'
  sign and correlate positively with them, ``results/zero_cost_reference``).
- :func:`epe_nas` — Lopes, Alirezazadeh, Alexandre, "EPE-NAS: Efficient Performance
  Estimation Without Training for Neural Architecture Search", ICANN 2021: the input Jacobians
  (as in jacov) grouped by label; per class t, e_t = sum over i, j of log(|corr_t[i, j]| + k),
  k = 1e-5; score = sum over class pairs (t, s) of |e_t - e_s| divided by the number of
  classes (the paper's form for at most 100 classes).
- :func:`zen` — Lin, Wang, Sun, Chen, Sun, Qian, Li, Jin, "Zen-NAS: A Zero-Shot NAS for
  High-Performance Image Recognition", ICCV 2021: every conv and linear weight redrawn from
  N(0, 1) (biases 0, BN affine 1 and 0), Gaussian input x and perturbation e, alpha = 0.01;
  f = the feature map before global pooling; Delta = mean over the batch of
  ||f(x) - f(x + alpha e)||_F; score = log(Delta) + sum over BN layers of log(sigma_i), sigma_i
  = sqrt of the mean over channels of the BN layer's batch variance in the pass on x. x and e
  (shaped like the batch's images), then the weights in module order, come from one generator
  seeded with ``seed``: the score depends only on the architecture and the image shape.
- :func:`meco` — Jiang, Wang, Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass
  via Minimum Eigenvalue of Correlation", NeurIPS 2023: one forward pass of the batch's first
  image alone; for the output of every module the pass calls (containers included, as in the
  authors' code) that is a feature map with channels c over p >= 2 positions, the smallest
  eigenvalue of the c x c Pearson correlation matrix of its channels across the positions;
  score = the sum over modules. A map with a constant channel (a ``none`` edge, a dead ReLU)
  or a single position contributes 0, as the authors' code sets undefined correlations to 0.
  Uses no labels. The paper's sampled-channel variant MeCo_opt is not provided.
- :func:`zico` — Li, Yang, Bhardwaj, Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient
  of Variation on Gradients", ICLR 2023: the loss gradients g of every weight over two or more
  minibatches; per weight tensor, S = sum over its weights of mean|g| / std(g) (population
  std across the minibatches; weights whose gradient does not vary are left out); score =
  the sum over weight tensors of log S (tensors with no varying weight are left out, as in
  the authors' code). :func:`halves` gives the minibatches from one batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speedynas_core.errors import SpeedyNASError

from .registry import Batch

__all__ = ["EPE_NAS_K", "JACOV_K", "ZEN_ALPHA", "epe_nas", "fisher", "grad_norm", "grasp",
           "halves", "jacov", "l2_norm", "meco", "nwot", "plain", "scored_weights", "snip",
           "synflow", "zen", "zico"]

#: The constant k of the Jacobian-covariance score.
JACOV_K = 1e-5
#: The constant k of EPE-NAS's per-class correlation score.
EPE_NAS_K = 1e-5
#: Zen-score's input perturbation scale alpha.
ZEN_ALPHA = 0.01
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


def _input_jacobians(net: nn.Module, images: torch.Tensor) -> torch.Tensor | None:
    """The rows J_i = d(sum_c f_c(x_i))/dx_i, flattened, double precision; ``None`` when the
    output ignores the input (e.g. a disconnected NB201 cell)."""
    x = images.detach().clone().requires_grad_(True)
    total = _logits(net(x)).sum()
    if not total.requires_grad:
        return None
    (jacobians,) = torch.autograd.grad(total, x, allow_unused=True)
    return None if jacobians is None else jacobians.reshape(len(x), -1).double()


def jacov(net: nn.Module, batch: Batch) -> float:
    """-sum(log(l + k) + 1/(l + k)) over the eigenvalues l of the correlation matrix of the
    batch's input Jacobians (Mellor et al. 2020, v1); NaN when it is undefined."""
    flat = _input_jacobians(net, batch[0])
    if flat is None:
        return math.nan
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


def l2_norm(net: nn.Module) -> float:
    """Sum over weight tensors of ||W||_2 (Abdelfattah et al. 2021)."""
    return _total([w.detach().norm() for w in scored_weights(net)])


def plain(net: nn.Module, batch: Batch) -> float:
    """Sum over all weights of W * dL/dW (Mozer & Smolensky 1989, Abdelfattah et al. 2021)."""
    return _total([(w * g).sum() for w, g in _loss_gradients(net, batch)])


def _channel_saliency(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Sum over channels of 0.5 * mean over the batch of (sum over positions of a * dL/da)^2."""
    per_channel = (activation * gradient).double()
    if per_channel.dim() > 2:
        per_channel = per_channel.flatten(2).sum(dim=2)
    return 0.5 * per_channel.pow(2).mean(dim=0).sum()


def fisher(net: nn.Module, batch: Batch) -> float:
    """Fisher channel saliency of every conv and linear output, summed (Turner et al. 2020)."""
    x, y = batch
    outputs: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.retain_grad()
            outputs.append(output)

    hooks = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, _WEIGHTED)]
    try:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(_logits(net(x)), y).backward()
    finally:
        for hook in hooks:
            hook.remove()
    return _total([_channel_saliency(a.detach(), a.grad) for a in outputs if a.grad is not None])


def grasp(net: nn.Module, batch: Batch) -> float:
    """Sum over all weights of -W * (H g), g = dL/dW, by double backprop (Wang et al. 2020)."""
    x, y = batch
    weights = [w for w in scored_weights(net) if w.requires_grad]
    net.zero_grad(set_to_none=True)
    loss = F.cross_entropy(_logits(net(x)), y)
    gradients = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    used = [(w, g) for w, g in zip(weights, gradients) if g is not None]
    if not used:
        return 0.0
    g_dot_g = sum((g * g.detach()).sum() for _, g in used)
    hessian_g = torch.autograd.grad(g_dot_g, [w for w, _ in used], allow_unused=True)
    return _total([-(w.detach() * hg).sum() for (w, _), hg in zip(used, hessian_g)
                   if hg is not None])


def epe_nas(net: nn.Module, batch: Batch) -> float:
    """sum over class pairs |e_t - e_s| / classes, e_t = sum log(|corr_t| + k) of the input
    Jacobians of class t (Lopes et al. 2021); NaN when a correlation is undefined."""
    flat = _input_jacobians(net, batch[0])
    if flat is None:
        return math.nan
    labels = batch[1]
    per_class = []
    for label in torch.unique(labels):
        corr = torch.corrcoef(flat[labels == label]).reshape(-1)
        if not torch.isfinite(corr).all():
            return math.nan
        per_class.append(torch.log(corr.abs() + EPE_NAS_K).sum())
    e = torch.stack(per_class)
    return float((e[:, None] - e[None, :]).abs().sum() / len(e))


def _gaussian_init(net: nn.Module, generator: torch.Generator) -> None:
    """Conv and linear weights from N(0, 1), their biases 0, BN affine weight 1 and bias 0."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, _WEIGHTED):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()


def _pre_pooling_features(net: nn.Module, x: torch.Tensor,
                          bn_stds: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The input of the network's last global pooling layer (its whole output when it has
    none); ``bn_stds`` collects each BN layer's sqrt(mean over channels of batch variance)."""
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    features: list[torch.Tensor] = []
    hooks = [pools[-1].register_forward_pre_hook(
        lambda module, inputs: features.append(inputs[0]))] if pools else []
    if bn_stds is not None:
        hooks += [m.register_forward_pre_hook(
            lambda module, inputs: bn_stds.append(
                inputs[0].transpose(0, 1).flatten(1).var(dim=1, unbiased=False).mean().sqrt()))
            for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        output = _logits(net(x))
    finally:
        for hook in hooks:
            hook.remove()
    return features[-1] if features else output


@torch.no_grad()
def zen(net: nn.Module, batch: Batch, seed: int = 0) -> float:
    """log E||f(x) - f(x + alpha e)||_F + sum log sigma_BN, Gaussian weights and inputs of the
    batch's shape drawn from ``seed`` (Lin et al. 2021). Modifies ``net``."""
    images = batch[0]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(images.shape, generator=generator).to(images)
    noise = torch.randn(images.shape, generator=generator).to(images)
    _gaussian_init(net, generator)
    bn_stds: list[torch.Tensor] = []
    clean = _pre_pooling_features(net, x, bn_stds)
    perturbed = _pre_pooling_features(net, x + ZEN_ALPHA * noise)
    delta = (clean - perturbed).double().flatten(1).norm(dim=1).mean()
    return float(torch.log(delta) + sum(torch.log(s.double()) for s in bn_stds))


def _min_correlation_eigenvalue(feature_map: torch.Tensor) -> torch.Tensor:
    """The smallest eigenvalue of the channels' correlation matrix of one sample's feature map
    (C, *positions); 0 when a channel is constant or there is a single position."""
    channels = feature_map.flatten(1).double()
    if channels.shape[1] < 2 or bool((channels.std(dim=1) == 0).any()):
        return channels.new_zeros(())
    return torch.linalg.eigvalsh(torch.corrcoef(channels))[0].clamp(min=0.0)


@torch.no_grad()
def meco(net: nn.Module, batch: Batch) -> float:
    """Sum over module outputs of the smallest eigenvalue of the channel correlation matrix,
    on the batch's first image alone (Jiang et al. 2023)."""
    eigenvalues: list[torch.Tensor] = []

    def record(module: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(output, torch.Tensor) and output.dim() >= 3:
            eigenvalues.append(_min_correlation_eigenvalue(output[0]))

    hooks = [m.register_forward_hook(record) for m in net.modules()]
    try:
        net(batch[0][:1])
    finally:
        for hook in hooks:
            hook.remove()
    return _total(eigenvalues)


def halves(batch: Batch) -> list[Batch]:
    """The batch split into two minibatches (the first one image longer when it is odd; a
    single image stays one minibatch)."""
    x, y = batch
    return list(zip(x.chunk(2), y.chunk(2)))


def zico(net: nn.Module, minibatches: list[Batch]) -> float:
    """Sum over weight tensors of log sum mean|g| / std(g), g the loss gradients of the
    ``minibatches`` (at least two) (Li et al. 2023)."""
    if len(minibatches) < 2:
        raise SpeedyNASError(f"zico needs the gradients of at least 2 minibatches, got "
                             f"{len(minibatches)} (a batch of at least 2 images gives two)")
    per_batch = [[g for _, g in _loss_gradients(net, b)] for b in minibatches]
    logs = []
    for gradients in zip(*per_batch):
        g = torch.stack(gradients).double().flatten(1)
        std = g.std(dim=0, correction=0)
        varies = std > 0
        if varies.any():
            logs.append(torch.log((g.abs().mean(dim=0)[varies] / std[varies]).sum()))
    return _total(logs)
