"""Candidate selection and the fine-tune protocol (what is recorded, identical batches)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import search_spaces
import supernet
from speedynas_core.config import load_config
from speedynas_core.errors import SpeedyNASError
from speedynas_core.runtime import mixed_precision
from estimators import create_estimator, needed_records
from speedynas_search.candidates import distinct_archs, draw_candidates, read_candidates
from speedynas_search.finetune import FinetuneBatches, finetune
from speedynas_search.search_config import CandidatesConfig, FinetuneConfig, SearchConfig

NB201 = search_spaces.create("nb201")


def test_uniform_draw_is_seeded_and_keeps_duplicates_by_default():
    cfg = CandidatesConfig(num=3000, seed=1)
    archs = draw_candidates(NB201, cfg)
    assert archs == draw_candidates(NB201, cfg) and len(archs) == 3000
    assert len(set(archs)) < 3000  # the reference's plain uniform draw repeats archs
    assert any(NB201.is_degenerate(a) for a in archs)


def test_filters_skip_degenerate_cells_and_isomorphic_duplicates():
    archs = draw_candidates(NB201, CandidatesConfig(num=2000, seed=1, skip_degenerate=True,
                                                    unique="isomorphic"))
    assert len(archs) == 2000 and not any(NB201.is_degenerate(a) for a in archs)
    assert len({NB201.canonical_form(a) for a in archs}) == 2000
    exact = draw_candidates(NB201, CandidatesConfig(num=2000, seed=1, unique="exact"))
    assert len(set(exact)) == 2000


def test_more_unique_candidates_than_the_space_holds_are_refused():
    nb201 = search_spaces.create("nb201")
    assert distinct_archs(nb201, CandidatesConfig(unique="exact")) == 15625
    assert distinct_archs(nb201, CandidatesConfig(unique="exact", skip_degenerate=True)) == 15284
    assert distinct_archs(nb201, CandidatesConfig(unique="isomorphic")) == 6466
    assert distinct_archs(nb201, CandidatesConfig()) is None  # duplicates kept: no limit
    assert distinct_archs(search_spaces.create("darts"), CandidatesConfig(unique="exact")) is None
    with pytest.raises(SpeedyNASError, match="candidates.num=6467 asks for more isomorphic-unique "
                                             "archs than the nb201 space holds .*at most 6466"):
        draw_candidates(nb201, CandidatesConfig(num=6467, unique="isomorphic"))
    with pytest.raises(SpeedyNASError, match="candidates.num: value 1000000000 is out of range"):
        load_config(SearchConfig, None, ["candidates.num=1000000000"], context={"space": "nb201"})


def test_a_candidates_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "candidates.txt"
    path.write_bytes("|nor_conv_3x3~0|".encode("utf-16"))
    with pytest.raises(SpeedyNASError, match=f"candidates file {path} is not UTF-8 text"):
        draw_candidates(search_spaces.create("nb201"), CandidatesConfig(file=str(path)))


ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_a_candidates_file_is_split_at_newlines_only(tmp_path):
    path = tmp_path / "candidates.txt"
    path.write_text(f"# two archs\r\n{ARCH}\r\n\n  {ARCH}\t\n", newline="")
    assert [str(a) for a in read_candidates(NB201, path)] == [ARCH, ARCH]
    for separator in ("\u2028", "\x85", "\x0c"):  # str.splitlines() would split here
        path.write_text(f"{ARCH}\n{ARCH}{separator}{ARCH}\n", newline="")
        with pytest.raises(SpeedyNASError, match=f"{path}:2: "):
            read_candidates(NB201, path)


def test_a_candidates_line_longer_than_an_arch_is_refused_short(tmp_path):
    path = tmp_path / "candidates.txt"
    path.write_text(f"{ARCH}\n" + "x" * 10**6 + "\n")
    with pytest.raises(SpeedyNASError) as info:
        read_candidates(NB201, path)
    assert str(info.value) == (f"{path}:2: the line holds 1,000,000 characters; an arch string "
                               "is at most 10,000")


def test_darts_isomorphic_filter_ignores_pair_order():
    darts = search_spaces.create("darts")
    v2 = darts.named("DARTS_V2")
    swapped = darts.parse(str(v2).replace("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),",
                                          "[('sep_conv_3x3', 1), ('sep_conv_3x3', 0),", 1))
    assert swapped != v2 and darts.canonical_form(swapped) == darts.canonical_form(v2)


def _batches(steps: int, val: bool) -> FinetuneBatches:
    g = torch.Generator().manual_seed(0)
    make = lambda: (torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g))  # noqa: E731
    batches = FinetuneBatches([make() for _ in range(steps)], [make() for _ in range(steps)] if val else [])
    batches.acc_images, batches.acc_labels = make()
    return batches


@pytest.mark.parametrize("names, recorded", [
    (["tse", "tlmini"], {"train_losses"}),
    (["sovl"], {"train_losses", "val_losses"}),
    (["valacc"], {"train_losses", "val_acc"}),
    (["valacc_inherited", "params"], {"val_acc_inherited"}),
])
def test_only_what_the_estimators_need_is_recorded(names, recorded):
    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    records = needed_records([create_estimator(n) for n in names])
    cfg = FinetuneConfig(budgets=[2, 4], batch_size=8)
    trajectory, times = finetune(net, NB201.sample(np.random.default_rng(0)), _batches(4, True),
                                 cfg, records)
    assert (len(trajectory.train_losses) == 4) == ("train_losses" in recorded or "val_acc" in recorded)
    assert (trajectory.val_losses is not None) == ("val_losses" in recorded)
    expected_acc = ({2, 4} if "val_acc" in recorded else set()) | (
        {0} if "val_acc_inherited" in recorded else set())
    assert set(trajectory.val_acc) == expected_acc
    assert (times.validation > 0) == bool(recorded & {"val_losses", "val_acc", "val_acc_inherited"})


def test_a_fine_tune_of_its_own_steps_is_the_start_of_the_longer_one():
    """A rung's fine-tune (``steps`` and the B values it is read at, passed beside
    ``finetune.budgets``) is the first ``steps`` updates of the search's own."""
    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    arch = NB201.sample(np.random.default_rng(5))
    batches, cfg = _batches(4, True), FinetuneConfig(budgets=[2, 4], batch_size=8)
    records = {"train_losses", "val_acc"}
    whole, _ = finetune(net, arch, batches, cfg, records)
    rung, _ = finetune(net, arch, batches, cfg, records, steps=3, budgets=[1, 3])
    assert len(whole.train_losses) == 4 and set(whole.val_acc) == {2, 4}
    assert rung.train_losses == whole.train_losses[:3] and set(rung.val_acc) == {1, 3}
    assert cfg.budgets == [2, 4]


def test_first_loss_is_measured_before_any_update_and_fine_tune_is_repeatable():
    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    arch = NB201.sample(np.random.default_rng(3))
    batches = _batches(3, False)
    cfg = FinetuneConfig(budgets=[3], batch_size=8)
    first, _ = finetune(net, arch, batches, cfg, {"train_losses"})
    again, _ = finetune(net, arch, batches, cfg, {"train_losses"})
    assert first.train_losses == again.train_losses
    x, y = batches.train[0]
    with torch.no_grad():
        inherited = torch.nn.functional.cross_entropy(net.extract(arch).train()(x), y).item()
    assert first.train_losses[0] == pytest.approx(inherited, rel=1e-6)


def test_bf16_fine_tune_runs_in_bfloat16_and_stays_within_its_rounding():
    torch.manual_seed(0)
    net = supernet.create_supernet("nb201", C=4, N=1)
    arch = NB201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|"
                       "+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    batches = _batches(4, True)
    cfg = FinetuneConfig(budgets=[2, 4], batch_size=8)
    records = {"train_losses", "val_losses", "val_acc"}
    full, _ = finetune(net, arch, batches, cfg, records)
    half, _ = finetune(net, arch, batches, cfg, records, precision="bf16")
    assert half.train_losses != full.train_losses  # bfloat16 arithmetic did run
    assert half.train_losses == pytest.approx(full.train_losses, rel=0.02)
    assert half.val_losses == pytest.approx(full.val_losses, rel=0.02)
    sub = net.extract(arch).train()
    with torch.no_grad(), mixed_precision(torch.device("cpu"), "bf16"):
        assert sub(batches.train[0][0]).dtype == torch.bfloat16
