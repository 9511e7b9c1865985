"""Chapter 03's library against the published results of Toy Models of Superposition.

The reference results (syllabus, section 03) are asserted on freshly trained
models, several seeds each with the best kept, as in the paper.
"""

from __future__ import annotations

import math

import pytest
import torch

from mi_course import superposition as tms
from mi_course.superposition.widget import superposition_explorer, train_small

FIVE_TO_TWO_P = 0.05 ** torch.linspace(0, 1, 10)
IMPORTANCE = 0.9 ** torch.arange(5.0)


@pytest.fixture(scope="module")
def five_to_two():
    config = tms.TrainConfig(steps=3_000, seed=1, progress=False)
    return tms.sweep(5, 2, FIVE_TO_TWO_P, IMPORTANCE, n_seeds=4, config=config)


def test_densest_keeps_the_two_most_important_features_orthogonally(five_to_two):
    W, _ = five_to_two
    norms = tms.feature_norms(W[0])
    assert (norms > 0.5).nonzero().flatten().tolist() == [0, 1]
    assert norms[2:].max() < 0.2
    angle = tms.angle_between(W[0][:, 0], W[0][:, 1])      # 0-180: adjacent_angles goes round (90 or 270)
    assert abs(angle - 90) < 5


def test_sparsest_stores_all_five_in_a_pentagon(five_to_two):
    W, _ = five_to_two
    assert (tms.feature_norms(W[-1]) > 0.5).all()
    angles = tms.adjacent_angles(W[-1].T)
    assert ((angles - 72).abs() <= 10).all(), angles


def test_an_intermediate_instance_has_antipodal_pairs(five_to_two):
    W, _ = five_to_two
    dpf = tms.dimensions_per_feature(W)
    found = []
    for k in range(1, 9):
        kept = tms.feature_norms(W[k]) > 0.5
        if kept.sum() != 4:
            continue
        unit = W[k][:, kept] / W[k][:, kept].norm(dim=0)
        cos = unit.T @ unit
        has_partner = (cos < -0.95).any(dim=1).all()
        if has_partner and 0.4 <= dpf[k] <= 0.6:
            found.append(k)
    assert found, f"no antipodal-pair instance; m/||W||^2 = {dpf.tolist()}"


def test_the_bias_turns_negative_with_superposition(five_to_two):
    """Dense: dropped features get a positive bias (their mean); sparse: all biases negative, to cut interference."""
    _, b = five_to_two
    assert b[0][2:].min() > 0
    assert b[-1].max() < 0


def test_large_uniform_run_shows_the_one_half_plateau():
    """n = 200 features, m = 20 dimensions: m/||W||_F^2 lingers at 1/2 over a range of sparsity."""
    p = (1 / torch.logspace(math.log10(1.5), math.log10(8), 12))
    config = tms.TrainConfig(steps=2_000, batch_size=256, seed=0, progress=False)
    W, _ = tms.sweep(200, 20, p, torch.ones(200), config=config)
    curve = tms.dimensions_per_feature(W)
    near_half = ((curve - 0.5).abs() < 0.05).tolist()
    longest = max(len(run) for run in "".join("x" if v else " " for v in near_half).split(" "))
    assert longest >= 3, curve.tolist()
    assert curve[0] > 0.8 and curve[-1] < 0.4, curve.tolist()


def test_phase_diagram_corners():
    """2 features in 1 dimension: dense + important feature 2 -> it takes the dimension; dense + unimportant
    -> dropped; sparse -> antipodal."""
    density = torch.tensor([1.0, 1.0, 0.01, 0.01])
    rel_importance = torch.tensor([5.0, 0.2, 5.0, 0.2])
    importance = torch.stack([torch.ones(4), rel_importance], dim=-1)
    W, _ = tms.sweep(2, 1, density, importance, n_seeds=3,
                     config=tms.TrainConfig(steps=3_000, seed=0, progress=False))
    assert tms.classify_phase(W).tolist() == [1, 0, 2, 2]


def test_instances_train_independently():
    model = tms.ToyModel(5, 2, torch.tensor([0.1, 0.5, 1.0]), IMPORTANCE, seed=0)
    x = model.batch(64, torch.Generator().manual_seed(0))

    def grad_of_instance_0():
        model.zero_grad()
        tms.tms_loss(model(x), x, model.importance).sum().backward()
        return model.W.grad[0].clone()
    before = grad_of_instance_0()
    with torch.no_grad():
        model.W[1:] += torch.randn_like(model.W[1:])
    assert torch.equal(grad_of_instance_0(), before)


def test_batched_forward_matches_a_loop_over_instances():
    gen = torch.Generator().manual_seed(0)
    W, b = torch.randn(3, 2, 5, generator=gen), torch.randn(3, 5, generator=gen)
    x = tms.generate_batch(7, 5, torch.tensor([0.3, 0.6, 0.9]), gen)
    looped = torch.stack([torch.relu(x[:, i] @ W[i].T @ W[i] + b[i]) for i in range(3)], dim=1)
    assert torch.allclose(tms.tms_forward(W, b, x), looped, atol=1e-6)


def test_generator_statistics_and_determinism():
    p = torch.tensor([1.0, 0.25, 0.0])
    x = tms.generate_batch(20_000, 4, p, torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 3, 4) and x.dtype == torch.float32
    assert torch.allclose((x != 0).float().mean(dim=(0, 2)), p, atol=0.01)
    present = x[:, 0]
    assert abs(present.mean() - 0.5) < 0.01 and abs(present.std() - 1 / math.sqrt(12)) < 0.01
    again = tms.generate_batch(20_000, 4, p, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


def test_training_is_deterministic():
    config = tms.TrainConfig(steps=50, seed=3, progress=False)
    runs = []
    for _ in range(2):
        model = tms.ToyModel(5, 2, FIVE_TO_TWO_P[:2], IMPORTANCE, seed=3)
        tms.train(model, config)
        runs.append(model.W.detach().clone())
    assert torch.equal(*runs)


def test_feature_dimensionality_of_known_geometries():
    pentagon = torch.stack([torch.cos(torch.arange(5) * 2 * math.pi / 5), torch.sin(torch.arange(5) * 2 * math.pi / 5)])
    antipodal = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(tms.feature_dimensionality(pentagon[None]), torch.full((1, 5), 0.4), atol=1e-5)
    assert torch.allclose(tms.feature_dimensionality(antipodal[None]), torch.tensor([[0.5, 0.5, 1.0]]), atol=1e-5)
    assert tms.feature_dimensionality(torch.zeros(1, 2, 3)).eq(0).all()


def test_superposition_and_alignment_verdicts():
    pentagon = torch.stack([torch.cos(torch.arange(5) * 1.2566), torch.sin(torch.arange(5) * 1.2566)])
    axes = torch.eye(2, 5)
    assert tms.exhibits_superposition(torch.stack([pentagon, axes])).tolist() == [True, False]
    assert tms.basis_alignment(axes[None]).item() == pytest.approx(1.0)
    assert tms.basis_alignment(pentagon[None]).item() < 0.95


def test_widget_training_function_and_widget():
    W = train_small(0.05, 1.0, steps=800)
    assert W.shape == (2, 5)
    assert (W.norm(dim=0) > 0.5).sum() >= 4   # sparse, equal importance: superposition
    box = superposition_explorer()
    assert len(box.children) == 2


def test_training_works_with_autograd_switched_off():
    """Chapter notebooks switch autograd off; the library's trainer must still train."""
    model = tms.ToyModel(5, 2, torch.tensor([0.1]), IMPORTANCE, seed=0)
    before = model.W.detach().clone()
    with torch.no_grad():
        tms.train(model, tms.TrainConfig(steps=20, progress=False))
    assert not torch.equal(model.W.detach(), before)


def test_angle_between_two_directions_is_at_most_180_degrees():
    # adjacent_angles goes round the circle: for two directions its first gap can be the 270° one
    u, v = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])
    assert sorted(tms.adjacent_angles(torch.stack([u, v])).round().tolist()) == [90.0, 270.0]
    assert tms.angle_between(u, v) == pytest.approx(90.0)
    assert tms.angle_between(u, -u) == pytest.approx(180.0)
    assert tms.angle_between(u, 3 * u) == pytest.approx(0.0, abs=1e-3)


def test_rotating_the_hidden_space_changes_only_the_relu_hidden_model():
    gen = torch.Generator().manual_seed(3)
    W, b = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 4, generator=gen)
    x = torch.rand(64, 2, 4, generator=gen)
    Wr = tms.rotate_hidden(W, 45)
    assert torch.allclose(Wr.transpose(-1, -2) @ Wr, W.transpose(-1, -2) @ W, atol=1e-5)
    assert torch.allclose(tms.tms_forward(Wr, b, x), tms.tms_forward(W, b, x), atol=1e-5)
    assert not torch.allclose(tms.relu_hidden_forward(Wr, b, x), tms.relu_hidden_forward(W, b, x), atol=1e-2)
    assert torch.allclose(tms.rotate_hidden(W, 0), W)


def test_a_trained_relu_hidden_model_pays_for_a_rotation_and_a_linear_one_does_not():
    p = torch.full((4,), 0.3)
    x = tms.generate_batch(4096, 3, p, torch.Generator().manual_seed(11))
    for forward, costs in [(tms.tms_forward, False), (tms.relu_hidden_forward, True)]:
        model = tms.ToyModel(3, 3, p, torch.ones(3), seed=5)
        tms.train(model, tms.TrainConfig(steps=1_500, seed=6, progress=False), forward=forward)
        W, b = model.W.detach(), model.b.detach()
        loss = tms.tms_loss(forward(W, b, x), x, model.importance)
        rotated = tms.tms_loss(forward(tms.rotate_hidden(W, 45), b, x), x, model.importance)
        if costs:
            assert (rotated > 2 * loss).all(), (loss, rotated)
        else:
            assert torch.allclose(rotated, loss, rtol=1e-4, atol=1e-7)


def test_feature_two_jumps_at_the_phase_change():
    """Along one row of the phase diagram (r = 0.3), |w_2| falls from near 1 to 0 in one step of density."""
    density = torch.logspace(-1.3, 0, 13)
    W, _ = tms.sweep(2, 1, density, torch.tensor([1.0, 0.3]), n_seeds=2,
                     config=tms.TrainConfig(steps=2_000, seed=4, progress=False))
    w2 = W[:, 0, 1].abs()
    assert w2[0] > 0.9 and w2[-1] < 0.05
    assert (w2[1:] - w2[:-1]).abs().max() > 0.6


def test_antipodal_pairs_counts_represented_features_pointing_opposite_ways():
    W = torch.tensor([[[1.0, -1.0, 0.0, 0.0, 0.1], [0.0, 0.0, 1.0, -1.0, 0.0]],     # two pairs (+ a tiny feature)
                      [[1.0, 0.0, -0.1, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]]])     # none: -0.1 is not represented
    assert tms.antipodal_pairs(W).tolist() == [2, 0]


def test_adam_step_is_torchs_adam_bit_for_bit():
    gen = torch.Generator().manual_seed(7)
    start = [torch.randn(3, 2, 5, generator=gen), torch.randn(3, 5, generator=gen)]
    ours = [p.clone() for p in start]
    theirs = [torch.nn.Parameter(p.clone()) for p in start]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in ours]
    optimizer = torch.optim.Adam(theirs, lr=3e-2)
    for step in range(1, 31):
        grads = [torch.randn(p.shape, generator=gen) * 10 ** (step % 3 - 1) for p in ours]
        lr = 3e-2 * (0.5 * (1 + math.cos(math.pi * step / 40)))
        tms.model.adam_step(ours, grads, moments, lr, step)
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b.detach())
        assert not torch.equal(a, start[0] if a.ndim == 3 else start[1])     # it moved
