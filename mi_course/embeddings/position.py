"""Where am I in the sentence? Word-position labels, residual streams and linear probes (puzzle P3).

The world labels every token with ``word_pos``, its position in its sentence (0 for the first word). The
zoo's tokenizer has one token per word, so this is also the token's position in its sentence. Two things
give the position away without any computation, and a probe can read them instead:

* **absolute position**: in the first sentence of a document, ``word_pos`` is the distance from ``<bos>``;
* **the word itself**: sentence-initial words are capitalised ("The", "After", names), and template words
  sit at fixed places ("capital" is word 1 of "The capital of ...").

So the probes here are scored on three groups of tokens: all, sentence-initial, and the *hard* ones (not
sentence-initial, and not in the first sentence of their document), where neither shortcut works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..sae.labels import labelled_rows
from ..zoo.world import World
from .vectors import activations, model_token_ids

# Documents with sentences (repeat documents are random words without full stops).
SENTENCE_MIX = {"facts": 0.35, "capitals": 0.15, "gender": 0.2, "sequence": 0.1, "story": 0.2}
FIRST_DOC = 10**8        # far beyond the documents the zoo trained on
N_CLASSES = 12           # word positions 0 .. 10, and "11 or later"


@dataclass
class PositionData:
    """Packed rows of documents and their labels. Every tensor is [n_rows, n_ctx]; -1 marks ``<bos>``."""

    tokens: Tensor       # int64 token ids
    word_pos: Tensor     # position of the word in its sentence
    line: Tensor         # index of the sentence in its document

    def groups(self) -> dict[str, Tensor]:
        """Boolean masks [n_rows, n_ctx] of the labelled tokens: all, sentence-initial, hard."""
        labelled = self.word_pos >= 0
        initial = self.word_pos == 0
        return {"all": labelled, "sentence-initial": initial,
                "hard": labelled & ~initial & (self.line > 0)}

    def absolute_position(self) -> Tensor:
        """The position of each token in its row. int64 [n_rows, n_ctx]"""
        return torch.arange(self.tokens.shape[1]).expand_as(self.tokens)


def position_data(n_rows: int, n_ctx: int = 128, first_doc: int = FIRST_DOC, seed: int = 0) -> PositionData:
    """``n_rows`` rows of whole documents with sentences (each starting with ``<bos>``), packed as in training."""
    tokens, labels = labelled_rows(World(seed, SENTENCE_MIX), n_rows, n_ctx, first_doc)
    return PositionData(tokens, labels["word_pos"], labels["line"])


def random_sentences(n_rows: int, n_ctx: int = 128, seed: int = 0, shortest: int = 3, longest: int = 12) -> PositionData:
    """``n_rows`` rows of sentences made of random nouns and colours, each ended by a full stop, ``shortest`` to
    ``longest`` words long: here the words near a token say nothing about its position unless a full stop is
    among them. Labels as in :func:`position_data` (the full stop gets the position after the last word).
    Draws from ``seed.stream(seed, "position.random_sentences")``."""
    from ..seed import stream
    from ..zoo import world

    gen = stream(seed, "position.random_sentences")
    pool = torch.tensor([world.TOKEN_ID[w] for w in world.OBJECTS + world.ANIMALS + world.FOODS + world.PLACES
                         + world.COLORS])
    stop = world.TOKEN_ID["."]
    tokens = torch.full((n_rows, n_ctx), stop)
    word_pos = torch.full((n_rows, n_ctx), -1)
    line = torch.zeros((n_rows, n_ctx), dtype=torch.long)
    tokens[:, 0] = world.BOS_ID
    for row in range(n_rows):
        i, sentence = 1, 0
        while i < n_ctx:
            length = int(torch.randint(shortest, longest + 1, (1,), generator=gen))
            words = pool[torch.randint(len(pool), (length,), generator=gen)]
            for position in range(length + 1):          # the words, then the full stop
                if i >= n_ctx:
                    break
                tokens[row, i] = words[position] if position < length else stop
                word_pos[row, i], line[row, i] = position, sentence
                i += 1
            sentence += 1
    return PositionData(tokens, word_pos, line)


def residual_hooks(n_layers: int) -> list[str]:
    """The places probed: the token embedding alone, the position embedding alone, their sum (the residual
    stream before block 0), and the residual stream after each attention layer and after each block."""
    hooks = ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre"]
    for layer in range(n_layers):
        hooks += [f"blocks.{layer}.hook_resid_mid", f"blocks.{layer}.hook_resid_post"]
    return hooks


def collect_residuals(model, tokens: Tensor, hooks: list[str]) -> dict[str, Tensor]:
    """The activations at ``hooks`` (attention-only models have no ``hook_resid_mid``: skipped).

    ``tokens`` are world ids; a model with its own tokenizer reads each word as its own token
    (:func:`~.vectors.model_token_ids`). The forward passes stop after the last hook (no logits,
    :func:`~.vectors.activations`).

    tokens: [n_rows, n_ctx] -> {hook: [n_rows, n_ctx, d_model]}
    """
    kept = activations(model, model_token_ids(model, tokens).to(model.W_E.device), hooks)
    return {hook: kept[hook].expand(tokens.shape[0], -1, -1).float().cpu()   # pos_embed has batch 1
            for hook in hooks if hook in kept}


@dataclass
class Probe:
    """A multinomial logistic-regression probe on standardised inputs."""

    mean: Tensor     # [d]
    std: Tensor      # [d]
    W: Tensor        # [d, n_classes]
    b: Tensor        # [n_classes]

    def logits(self, X: Tensor) -> Tensor:
        """X: [n, d] -> [n, n_classes]"""
        return ((X - self.mean) / self.std) @ self.W + self.b

    def predict(self, X: Tensor) -> Tensor:
        """X: [n, d] -> int64 [n]"""
        return self.logits(X).argmax(dim=-1)


def fit_probe(X: Tensor, y: Tensor, n_classes: int = N_CLASSES, l2: float = 1e-3, max_iter: int = 50) -> Probe:
    """Fit a linear probe (cross-entropy + L2, full-batch L-BFGS; deterministic). X: [n, d], y: int64 [n]

    50 iterations: on puzzle P3's probes, 200 take four times as long and move held-out accuracies by at most
    0.02 (most by under 0.005), and the best place to probe stays the same."""
    mean, std = X.mean(0), X.std(0) + 1e-6
    Xn = (X - mean) / std
    W = torch.zeros(X.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xn @ W + b, y) + l2 * W.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return Probe(mean, std, W.detach(), b.detach())


@dataclass
class ProbeResult:
    """Held-out accuracy of one probe, per group of tokens."""

    hook: str
    accuracy: dict[str, float]   # group name -> accuracy


def probe_accuracy(probe: Probe, X: Tensor, data: PositionData) -> dict[str, float]:
    """Accuracy of ``probe`` per group. X: [n_rows, n_ctx, d] activations of ``data``'s tokens."""
    target = data.word_pos.clamp(max=N_CLASSES - 1)
    correct = probe.predict(X.flatten(0, 1)).view_as(target) == target
    return {name: correct[mask].float().mean().item() for name, mask in data.groups().items()}


def probe_layers(train_acts: dict[str, Tensor], train: PositionData, test_acts: dict[str, Tensor],
                 test: PositionData) -> list[ProbeResult]:
    """Fit one probe per hook on ``train`` and score it on ``test``. Acts: {hook: [n_rows, n_ctx, d]}"""
    mask = train.word_pos >= 0
    y = train.word_pos[mask].clamp(max=N_CLASSES - 1)
    results = []
    for hook, X in train_acts.items():
        probe = fit_probe(X[mask], y)
        results.append(ProbeResult(hook, probe_accuracy(probe, test_acts[hook], test)))
    return results


def context_features(E: Tensor, tokens: Tensor, k: int) -> Tensor:
    """A baseline that knows only the local context: the embeddings of the current word and the ``k - 1``
    words before it, side by side (a probe on these sees no counting, only which words are near).

    E: [world words, d] rows of W_E by world id (``word_vectors(model, torch.arange(len(VOCAB)))``; on a zoo
    model that is W_E itself), tokens: [n_rows, n_ctx] world ids -> [n_rows, n_ctx, k * d] (the first words of a row see
    the end of the row in place of missing words: they are ``<bos>`` or sentence-initial anyway)
    """
    return torch.cat([E[torch.roll(tokens, shift, dims=1)] for shift in range(k)], dim=-1)


def majority_baseline(train: PositionData, test: PositionData) -> dict[str, float]:
    """Accuracy per group of always guessing that group's commonest word position (among training tokens)."""
    train_target, test_target = train.word_pos.clamp(max=N_CLASSES - 1), test.word_pos.clamp(max=N_CLASSES - 1)
    train_groups = train.groups()
    return {name: (test_target[mask] == train_target[train_groups[name]].mode().values).float().mean().item()
            for name, mask in test.groups().items()}
