"""Exercises for chapter 03, toy models of superposition.

Each exercise lists its test cases (seeded random inputs plus edge cases),
known mistakes with the message that explains them, and progressive hints.
References are the functions in :mod:`.model` and :mod:`.geometry`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import superposition as tms
from ..checks.compare import describe_mismatch
from ..checks.exercise import Case, CustomExercise, FunctionExercise, Mistake, randn, register
from ..checks.prediction import Question, register_question
from ..checks.sandbox import call_with_timeout



def _features(gen: torch.Generator, batch: int, instances: int, n: int, p: float = 0.4) -> Tensor:
    return tms.generate_batch(batch, n, torch.full((instances,), p), gen)


# --- 3.1 the data generator ---------------------------------------------------

def _judge_generate_batch(learner) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `generate_batch` itself."
    p = torch.tensor([1.0, 0.5, 0.1, 0.0])
    p_before = p.clone()
    out = call_with_timeout(learner, (4000, 6, p))
    if out.error:
        return False, out.error
    x = out.value
    if not torch.equal(p, p_before):
        return False, "Your function changed `feature_probability` in place; leave the input alone."
    shape_problem = describe_mismatch(x, torch.zeros(4000, 4, 6), name="the batch")
    if shape_problem and not (isinstance(x, Tensor) and x.shape == (4000, 4, 6) and x.is_floating_point()):
        return False, shape_problem + " (called with batch_size=4000, n_features=6, 4 instances)"
    if x.dtype != torch.float32:
        return False, f"The batch has dtype {x.dtype}; use float32 (torch.rand's default)."
    if not torch.isfinite(x).all():
        return False, "The batch contains NaN or inf."
    if x.min() < 0 or x.max() > 1:
        return False, (f"Values must lie in [0, 1], yours range over [{x.min():.3g}, {x.max():.3g}]. "
                       "Use torch.rand (uniform), not torch.randn (normal).")
    zero_frac = (x == 0).float().mean(dim=(0, 2))
    present = x[x > 0]
    if torch.allclose(zero_frac, p, atol=0.03) and not torch.allclose(p, 1 - p):
        return False, ("Features are zero with probability p; it should be the other way round: a feature "
                       "is *present* (non-zero) with probability p = feature_probability, zero with 1 - p = S.")
    for k in range(4):
        expected = 1 - p[k].item()
        if abs(zero_frac[k].item() - expected) > 0.03:
            return False, (f"Instance {k} has feature_probability {p[k].item():g}, so about {expected:.0%} of its "
                           f"entries should be 0, but {zero_frac[k].item():.1%} are. Each instance uses its own "
                           "probability (broadcast p over the instance dimension).")
    if present.numel() and (present - present.mean()).abs().max() < 1e-6:
        return False, "Present features all have the same value; they should be uniform on [0, 1] (torch.rand)."
    if abs(present.mean().item() - 0.5) > 0.02 or abs(present.std().item() - 1 / math.sqrt(12)) > 0.02:
        return False, (f"Present features should be uniform on [0, 1] (mean 0.5, std 0.289); yours have mean "
                       f"{present.mean():.3f} and std {present.std():.3f}.")
    again = call_with_timeout(learner, (4000, 6, p))
    if again.error is None and isinstance(again.value, Tensor) and torch.equal(again.value, x):
        return False, "Two calls returned the same batch; each call should draw fresh random numbers."
    return True, "Generate batch: right shape and dtype, per-instance sparsity and uniform values on [0, 1]."


register(CustomExercise(
    id="03.generate_batch", title="Generate batch", reference=tms.generate_batch,
    judge=_judge_generate_batch,
    hints=["Draw two tensors of shape [batch, instances, features] with torch.rand: one for the values, "
           "one to decide which features are present.",
           "A feature is present where the second draw is below its probability: `mask = torch.rand(...) < p`. "
           "Reshape p from [instances] to [instances, 1] so it broadcasts.",
           "`torch.where(mask, values, 0.0)`, or `values * mask`."]))


# --- 3.2 the forward pass -----------------------------------------------------

def _forward_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for (i, h, f, label) in [(3, 2, 5, "3 instances, 5 features in 2 dims"),
                             (2, 4, 7, "2 instances, 7 features in 4 dims"),
                             (1, 1, 2, "1 instance, 2 features in 1 dim")]:
        W, b = randn(gen, i, h, f, scale=0.8), randn(gen, i, f, scale=0.3)
        cases.append(Case((W, b, _features(gen, 16, i, f)), label=f"random W, b and x ({label})"))
    W = randn(gen, 2, 2, 5)
    cases.append(Case((W, torch.full((2, 5), -5.0), _features(gen, 8, 2, 5)),
                      label="a very negative bias (every output should be 0)"))
    return cases


register(FunctionExercise(
    id="03.tms_forward", title="Forward pass", reference=tms.tms_forward, cases=_forward_cases,
    mistakes=[
        Mistake(lambda W, b, x: torch.einsum("ihf,bih->bif", W, torch.relu(torch.einsum("ihf,bif->bih", W, x))) + b,
                "ReLU is applied in the wrong place: the hidden layer h = W x is linear; the ReLU comes after "
                "W^T h + b."),
        Mistake(lambda W, b, x: torch.relu(torch.einsum(
            "ihf,bih->bif", W, torch.relu(torch.einsum("ihf,bif->bih", W, x))) + b),
                "There is an extra ReLU on the hidden layer. The model is ReLU(W^T W x + b): h = W x stays linear."),
        Mistake(lambda W, b, x: torch.relu(torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x))),
                "The bias b is missing: add it before the ReLU."),
        Mistake(lambda W, b, x: torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x)) + b,
                "The final ReLU is missing: x' = ReLU(W^T W x + b)."),
    ],
    hints=["Work per instance first: for one instance W is [hidden, features], so h = W @ x has shape [hidden].",
           "With the batch and instance dimensions: h = einsum('ihf,bif->bih', W, x), then "
           "einsum('ihf,bih->bif', W, h) applies W^T.",
           "Add b (shape [instances, features] broadcasts over the batch) and apply torch.relu last."]))


# --- 3.3 the loss -----------------------------------------------------------------

def _loss_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for (b, i, f) in [(32, 3, 5), (7, 2, 4), (64, 1, 3)]:
        x = _features(gen, b, i, f)
        out = torch.relu(x + randn(gen, b, i, f, scale=0.2))
        importance = torch.rand(i, f, generator=gen) + 0.1
        cases.append(Case((out, x, importance), label=f"random outputs (batch {b}, {i} instances, {f} features)"))
    return cases


register(FunctionExercise(
    id="03.tms_loss", title="Importance-weighted loss", reference=tms.tms_loss, cases=_loss_cases,
    mistakes=[
        Mistake(lambda out, x, imp: ((x - out) ** 2).sum(-1).mean(0),
                "The importance weighting is missing: multiply each feature's squared error by importance[i]."),
        Mistake(lambda out, x, imp: (imp * (x - out) ** 2).mean(-1).mean(0),
                "You averaged over features; the loss sums over features (and averages over the batch)."),
        Mistake(lambda out, x, imp: (imp * (x - out) ** 2).sum(-1).sum(0),
                "You summed over the batch; average over it, so the loss does not grow with the batch size."),
        Mistake(lambda out, x, imp: (imp * (x - out).abs()).sum(-1).mean(0),
                "That is an absolute error; the loss uses the squared error (x - x')^2."),
    ],
    hints=["The squared error (x - out)**2 has shape [batch, instances, features]; importance [instances, features] "
           "broadcasts against it.",
           "Sum over the feature dimension (-1), then average over the batch dimension (0), leaving [instances]."]))


# --- 3.4 the 5 -> 2 settings ----------------------------------------------------------

FIVE_TO_TWO = (0.05 ** torch.linspace(0, 1, 10), 0.9 ** torch.arange(5, dtype=torch.float32))


def _judge_settings(learner) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `five_to_two_settings` itself."
    outcome = call_with_timeout(learner)
    if outcome.error:
        return False, outcome.error
    if not isinstance(outcome.value, (tuple, list)) or len(outcome.value) != 2:
        return False, "Return a tuple of two tensors: (feature_probability, importance)."
    p, imp = outcome.value
    expected_p, expected_imp = FIVE_TO_TWO
    problem = describe_mismatch(p, expected_p, name="feature_probability", atol=1e-4)
    if problem and isinstance(p, Tensor) and p.shape == expected_p.shape:
        if torch.allclose(p, 1 - expected_p, atol=1e-4):
            return False, "That is the sparsity S; the model takes the feature probability 1 - S."
        if torch.allclose(p, torch.linspace(1, 0.05, 10), atol=1e-4):
            return False, "The probabilities should be spaced geometrically (evenly on a log scale), not linearly."
    if problem:
        return False, problem + " (10 values from 1 down to 0.05, geometric)"
    problem = describe_mismatch(imp, expected_imp, name="importance", atol=1e-5)
    if problem:
        return False, problem + " (importance of feature i is 0.9 ** i)"
    return True, "The paper's settings: 10 feature probabilities from 1 to 0.05 and importance 0.9^i."


def _five_to_two_reference() -> tuple[Tensor, Tensor]:
    return FIVE_TO_TWO[0].clone(), FIVE_TO_TWO[1].clone()


register(CustomExercise(
    id="03.five_to_two_settings", title="The 5 -> 2 settings", reference=_five_to_two_reference,
    judge=_judge_settings,
    hints=["Geometric spacing from 1 to 0.05: 0.05 ** t for t evenly spaced in [0, 1].",
           "torch.linspace(0, 1, 10) gives the exponents; 0.9 ** torch.arange(5.0) the importances."]))


# --- 3.5 angles between adjacent features ------------------------------------------------------

def _angle_cases(gen: torch.Generator) -> list[Case]:
    perm = torch.randperm(5, generator=gen)
    pent = (_pentagon() * (0.5 + torch.rand(5, generator=gen)))[:, perm].T      # [5, 2], shuffled
    rot = torch.rand(1, generator=gen).item() * 2 * math.pi
    R = torch.tensor([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    return [
        Case((pent @ R.T,), label="a pentagon given in shuffled order, rotated, with unequal lengths"),
        Case((randn(gen, 4, 2),), label="4 random directions"),
        Case((torch.tensor([[1.0, 0.0], [-2.0, 0.0]]),), label="an antipodal pair"),
    ]


register(FunctionExercise(
    id="03.adjacent_angles", title="Angles between adjacent features", reference=tms.adjacent_angles,
    cases=_angle_cases, atol=1e-3, rtol=1e-4,
    mistakes=[
        Mistake(lambda d: torch.rad2deg(torch.diff(torch.atan2(d[:, 1], d[:, 0]),
                                                   append=torch.atan2(d[:1, 1], d[:1, 0]) + 2 * math.pi)),
                "Sort the directions by angle first: neighbours on the circle are not neighbours in the input."),
        Mistake(lambda d: torch.deg2rad(tms.adjacent_angles(d)),
                "Those are radians; return degrees (torch.rad2deg)."),
    ],
    hints=["torch.atan2(y, x) gives each direction's angle in (-pi, pi]; sort them.",
           "Differences of consecutive sorted angles, plus the gap that closes the circle: "
           "first + 2*pi - last. They sum to 360 degrees."]))


# --- 3.6-3.7 dimensions per feature, feature dimensionality ---------------------------------------------------------

def _pentagon(scale: float = 1.0) -> Tensor:
    angles = torch.arange(5) * 2 * math.pi / 5
    return torch.stack([torch.cos(angles), torch.sin(angles)]) * scale     # [2, 5]


def _geometry_cases(gen: torch.Generator) -> list[Case]:
    dead = randn(gen, 2, 3, 6)
    dead[:, :, 2] = 0.0
    antipodal = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    return [
        Case((randn(gen, 4, 2, 5),), label="random W (4 instances, 5 features in 2 dims)"),
        Case((randn(gen, 3, 6, 20, scale=0.5),), label="random W (3 instances, 20 features in 6 dims)"),
        Case((torch.stack([_pentagon(), _pentagon(0.7)]),), label="two pentagons"),
        Case((antipodal[None],), label="two antipodal pairs"),
        Case((dead,), label="W with an all-zero column (a dead feature)"),
    ]


def _fd_unnormalised(W: Tensor) -> Tensor:
    norms_sq = W.pow(2).sum(-2)
    return norms_sq / torch.einsum("ihf,ihg->ifg", W, W).pow(2).sum(-1)


def _fd_nan_on_dead(W: Tensor) -> Tensor:
    norms = W.norm(dim=-2, keepdim=True)
    overlaps = torch.einsum("ihf,ihg->ifg", W / norms, W)
    return norms.squeeze(-2) ** 2 / (overlaps ** 2).sum(-1)


register(FunctionExercise(
    id="03.dimensions_per_feature", title="Dimensions per feature", reference=tms.dimensions_per_feature,
    cases=_geometry_cases,
    mistakes=[
        Mistake(lambda W: W.shape[-1] / W.pow(2).sum(dim=(-2, -1)),
                "You divided the number of *features*; the numerator is m, the number of hidden dimensions."),
        Mistake(lambda W: W.shape[-2] / W.pow(2).sum(dim=(-2, -1)).sqrt(),
                "||W||_F^2 is the *squared* Frobenius norm: the sum of squares, without a square root."),
        Mistake(lambda W: W.pow(2).sum(dim=(-2, -1)) / W.shape[-2],
                "Upside down: it is m / ||W||_F^2 (dimensions per feature, not features per dimension)."),
    ],
    hints=["m is W.shape[-2]; ||W||_F^2 sums the squares over the last two dimensions."]))


register(FunctionExercise(
    id="03.feature_dimensionality", title="Feature dimensionality", reference=tms.feature_dimensionality,
    cases=_geometry_cases,
    mistakes=[
        Mistake(_fd_unnormalised, "The denominator uses W_i · W_j; it needs the unit vector Ŵ_i = W_i / ||W_i|| "
                                  "(only the *other* feature is left unnormalised)."),
        Mistake(_fd_nan_on_dead, "A dead feature (all-zero column) gives 0/0 = NaN. Clamp the norm before dividing "
                                 "(e.g. .clamp_min(1e-8)) so such a feature gets dimensionality 0."),
    ],
    hints=["Column norms: W.norm(dim=-2) has shape [instances, features].",
           "Ŵ = W / norms[:, None, :]; the overlaps Ŵ_i · W_j are einsum('ihf,ihg->ifg', W_hat, W).",
           "D = norms**2 / (overlaps**2).sum(-1); guard the divisions for all-zero columns."]))


# --- 3.8 the phase diagram ---------------------------------------------------------------------

def _phase_cases(gen: torch.Generator) -> list[Case]:
    W = torch.tensor([[1.0, 0.02], [0.03, 1.0], [1.0, -1.0], [-0.9, 0.8], [-1.0, 0.01], [0.02, -1.1]])
    noisy = W + randn(gen, *W.shape, scale=0.02)
    return [Case((W[:, None, :],), label="one instance of each phase, with either sign"),
            Case((noisy[:, None, :],), label="the same with a little noise")]


register(FunctionExercise(
    id="03.classify_phase", title="Classify the phase", reference=tms.classify_phase, cases=_phase_cases,
    mistakes=[
        Mistake(lambda W, threshold=0.5: torch.where((W[:, 0, 0] > threshold) & (W[:, 0, 1] > threshold), 2,
                                                     torch.where(W[:, 0, 1] > threshold, 1, 0)).long(),
                "Weights can be negative: a feature is represented when |w| exceeds the threshold, and the "
                "antipodal phase has w1 and w2 of opposite signs."),
    ],
    hints=["A feature is represented when |w| > threshold.",
           "Phase 2 (antipodal): both represented with w1 * w2 < 0. Phase 1: only feature 2. Otherwise 0.",
           "torch.where can nest: torch.where(both, 2, torch.where(second_only, 1, 0))."]))
# --- 3.9-3.11 the hierarchy of feature properties -------------------------------------------

def _linear_cases(gen: torch.Generator) -> list[Case]:
    M = randn(gen, 5, 3)
    M_pos = M.abs()
    c = randn(gen, 3)
    W = randn(gen, 2, 5)
    return [
        Case((lambda x: x @ M, 5), label="h(x) = x @ M (a linear map)"),
        Case((lambda x: x @ M + c, 5), label="h(x) = x @ M + c (affine, with a bias)"),
        Case((lambda x: torch.relu(x @ M), 5), label="h(x) = ReLU(x @ M)"),
        Case((lambda x: torch.relu(x @ M_pos), 5),
             label="h(x) = ReLU(x @ M) with M >= 0 (looks linear if you only try non-negative coefficients)"),
        Case((lambda x: x ** 2, 5), label="h(x) = x ** 2"),
        Case((lambda x: x @ W.T @ W, 5), label="h(x) = W^T W x (the toy model before its bias and ReLU)"),
    ]


register(FunctionExercise(
    id="03.is_linear", title="Linearity test", reference=tms.is_linear, cases=_linear_cases,
    hints=["Linear means f(a x + c y) = a f(x) + c f(y) for all inputs and all real a, c.",
           "Draw random x, y and random coefficients a, c (negative ones too: ReLU can look linear on positive "
           "inputs), and compare both sides with a tolerance."]))


def _superposition_cases(gen: torch.Generator) -> list[Case]:
    pair = torch.zeros(2, 5)
    pair[0, 0], pair[1, 1] = 1.0, 1.0
    pair[:, 2:] = randn(gen, 2, 3, scale=0.01)          # three dead features
    antipodal = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    collinear = torch.tensor([[1.0, 0.8, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    return [
        Case((torch.stack([_pentagon(), pair]),), label="a pentagon, and an orthogonal pair with 3 dead features"),
        Case((torch.stack([antipodal, torch.eye(2, 4)]),), label="two antipodal pairs, and 2 of 4 features on the axes"),
        Case((torch.stack([torch.eye(3), collinear]),), label="3 features in 3 dims: the identity, and two collinear"),
        Case((randn(gen, 3, 3, 8),), label="random W (8 features in 3 dims)"),
    ]


register(FunctionExercise(
    id="03.exhibits_superposition", title="Superposition test", reference=tms.exhibits_superposition,
    cases=_superposition_cases,
    mistakes=[
        Mistake(lambda W, threshold=0.5, tol=1e-3: torch.full((W.shape[0],), W.shape[-1] > W.shape[-2]),
                "You decided from the shape alone (more features than dimensions). Features with almost no weight "
                "are not represented: drop columns with norm below the threshold before testing the Gram matrix."),
    ],
    hints=["Keep only represented features: columns of W[i] with norm above `threshold`.",
           "The Gram matrix of the kept columns is G = Wk^T Wk (k x k). It is invertible exactly when its smallest "
           "eigenvalue is non-zero (torch.linalg.eigvalsh), i.e. when rank = k.",
           "Return a bool tensor with one entry per instance; an instance with no represented feature is False."]))


def _alignment_cases(gen: torch.Generator) -> list[Case]:
    R = torch.linalg.qr(randn(gen, 2, 2)).Q
    basis = torch.tensor([[1.0, 0.0, 0.0], [0.0, -2.0, 0.0]])
    return [
        Case((torch.stack([basis, R @ basis]),), label="one-hot features, and the same features rotated"),
        Case((randn(gen, 4, 3, 6),), label="random W (6 features in 3 dims)"),
    ]


register(FunctionExercise(
    id="03.basis_alignment", title="Basis alignment", reference=tms.basis_alignment, cases=_alignment_cases,
    mistakes=[
        Mistake(lambda W, threshold=0.5: (W.abs().max(dim=-2).values / W.norm(dim=-2)).mean(-1),
                "Use squared entries (the share of ||W_i||^2 on its largest coordinate), and average over "
                "represented features only."),
    ],
    hints=["For each feature: max_k W[k, i]**2 / ||W_i||**2. It is 1 for a one-hot direction.",
           "Average that share over the features whose norm exceeds the threshold (a float mask helps)."]))


# --- 3.12 the privileged-basis model ------------------------------------------------------------

register(FunctionExercise(
    id="03.relu_hidden_forward", title="A hidden layer with a privileged basis", reference=tms.relu_hidden_forward,
    cases=_forward_cases,
    mistakes=[
        Mistake(tms.tms_forward, "That is the model above, ReLU(Wᵀ W x + b), whose hidden space any rotation "
                "leaves unchanged. The point is an elementwise non-linearity *on the hidden layer*: h = ReLU(W x)."),
        Mistake(lambda W, b, x: torch.einsum("ihf,bih->bif", W, torch.relu(torch.einsum("ihf,bif->bih", W, x))) + b,
                "The output keeps its ReLU: x' = ReLU(Wᵀ h + b), with h = ReLU(W x)."),
        Mistake(lambda W, b, x: torch.relu(torch.einsum("ihf,bih->bif", W, torch.relu(torch.einsum("ihf,bif->bih", W, x)))),
                "The bias b is missing: add it before the output ReLU."),
    ],
    hints=["Start from your forward pass of section 1 and find the one place where the hidden vector is formed.",
           "h = torch.relu(einsum('ihf,bif->bih', W, x)), then ReLU(einsum('ihf,bih->bif', W, h) + b)."]))


# --- predict, then check -------------------------------------------------------------------

register_question(Question(
    id="03.features_at_density_0.3", title="Five features, two dimensions, density 0.3",
    prompt="At 1 − S = 0.3 and importance decay 0.9, how many of the 5 features does the 5 → 2 model represent?",
    kind="number", abs_tol=0.0,
    advise=lambda answer, truth, context: (
        "A pentagon stores all five, but each feature then interferes with four neighbours at 72°; at this density "
        "features are often present together, and the fifth (importance 0.9⁴ ≈ 0.66) is not worth it."
        if answer > truth else
        "Two is what dense features get, one per dimension. Here each feature is absent 70% of the time, so two "
        "features can share a line, pointing opposite ways (an antipodal pair), and rarely collide."
        if answer <= 2 < truth else None),
    explain="Sparsity makes interference rare, and the model trades it against storing more features."))

register_question(Question(
    id="03.least_important_feature", title="Flattening the importance the other way",
    prompt="At 1 − S = 0.05 the model stores a pentagon. What happens to the fifth feature when the importance "
           "decay goes from 0.9 down to 0.5?",
    choices=["it stays in the pentagon", "it shrinks or drops out", "it grows"],
    advise=lambda answer, truth, context: (
        "At decay 0.5 the fifth feature's importance is 0.5⁴ = 1/16 of the first's: storing it is barely worth "
        "the interference it brings to the four that matter." if truth == "it shrinks or drops out" else None),
    explain="Which features a model stores depends on importance as well as sparsity."))

register_question(Question(
    id="03.dense_features", title="Dense features",
    prompt="With dense features (1 − S = 1) and importance decay 0.9, how many features does the model represent?",
    kind="number", abs_tol=0.0,
    advise=lambda answer, truth, context: (
        "Dense features are all present at once, so superposed features would interfere on every input. The model "
        "keeps as many features as it has dimensions, the most important ones, like PCA." if answer > truth
        else None),
    explain="Without sparsity there is no superposition: the model behaves like PCA."))

register_question(Question(
    id="03.rotating_a_privileged_basis", title="Rotating the ReLU-hidden model",
    prompt="Rotate the hidden space of a well-trained ReLU-hidden model by 45°. Its loss will ...",
    choices=["stay the same", "rise", "fall"],
    messages={
        "stay the same": "It would, without the hidden ReLU: Wᵀ W does not change when W is rotated. With it, "
        "ReLU(R W x) is not R ReLU(W x): the ReLU cuts each coordinate at zero, so which coordinates there are "
        "matters.",
        "fall": "The trained model sits at a low loss for its own axes; a rotation moves the features away from "
        "what the ReLUs were trained to pass."},
    explain="An elementwise non-linearity makes the basis it acts in special: a privileged basis."))
