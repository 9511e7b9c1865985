"""The embedding puzzles (course seed 002, after Neel Nanda's mech-interp puzzles).

- :mod:`.geometry`: cosine similarities, centring, how much of a set of vectors one shared direction holds (P1);
- :mod:`.vectors`: one vector per word, from the embedding, the unembedding or the residual stream at a layer,
  on any model (world words in the model's own tokens), and the final residual with the probability of given
  words, a few rows at a time (P1, P2, P3);
- :mod:`.relations`: relation vectors as mean differences, how much of a held-out pair's difference they
  explain against a random vector, analogies, an ordered feature as a direction (P2);
- :mod:`.position`: word-position labels from the world, residual streams, linear probes per layer, and the
  confounds (absolute position, sentence-initial words) (P3);
- :mod:`.plots`: the puzzles' figures;
- :mod:`.answers`: ``check_answer`` and ``hint``: answers stored as salted hashes only, and the instructor's
  :func:`~.answers.make_question` that produces them.

This package may import the zoo and the chapters' packages; nothing imports it (tests/test_layout.py).
The puzzle notebooks are ``solutions/puzzles/P*.ipynb``; the puzzle map is :mod:`mi_course.puzzles`.
"""

from .answers import check_answer, hint
from .geometry import centre, cosine_matrix, mean_pairwise_cosine, off_diagonal, shared_direction_share
from .position import (ProbeResult, collect_residuals, context_features, fit_probe, majority_baseline, position_data,
                       probe_accuracy, probe_layers, random_sentences, residual_hooks)
from .relations import (analogy, analogy_accuracy, fraction_explained, held_out_explained, order_correlation,
                        relation_vector)
from .vectors import model_token_ids, output_probabilities, word_ids, word_vectors

__all__ = ["ProbeResult", "analogy", "analogy_accuracy", "centre", "check_answer", "collect_residuals",
           "context_features", "cosine_matrix", "fit_probe", "fraction_explained", "held_out_explained", "hint",
           "majority_baseline", "mean_pairwise_cosine", "model_token_ids", "off_diagonal", "order_correlation",
           "output_probabilities", "position_data", "probe_accuracy", "probe_layers", "random_sentences",
           "relation_vector", "residual_hooks", "shared_direction_share", "word_ids", "word_vectors"]
