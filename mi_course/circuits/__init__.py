"""Chapter 02, virtual weights and circuits (Elhage et al. 2021, *A Mathematical Framework for
Transformer Circuits*; course seed notes 000, 001 and 003).

- :mod:`.heads`: each head's output, and why the concatenated ``W_O`` is a sum over heads (section 1);
- :mod:`.factored`: QK and OV circuits, ``FactoredMatrix``, low-rank eigenvalues and singular values (2);
- :mod:`.full_circuits`: token-to-token full circuits (also through a layer-0 head), the positional
  pattern, top-k accuracy, copying scores (3, 4);
- :mod:`.composition`: Q-, K- and V-composition scores, their reference values (``1/√d_head``,
  ``1/√d_model``), random baselines (pooled, and per pair with each spectrum kept), and the
  score weighted by real inputs (5, 6);
- :mod:`.paths`: frozen runs, virtual heads and the path expansion of a 2-layer model (6);
- :mod:`.plots`: the chapter's figures; :mod:`.widget`: the head explorer;
- :mod:`.exercises`: the chapter's graded exercises (references are the functions above).

Every function takes the model as an argument. Chapter 04 and the zoo's model cards reach
:mod:`.composition` through :mod:`mi_course.induction.head_scores`, so this package never imports
:mod:`mi_course.zoo` (tests/test_layout.py finds such a cycle).

The notebook imports the package as ``circuits``: ``from mi_course import circuits``.
"""

from .composition import (KINDS, aligned_composition_score, composition_score, composition_scores,
                          data_composition_score, data_composition_scores, k_composition, model_composition_scores,
                          haar_rotation, random_composition_scores, rotated_composition_scores, rotated_pair_scores,
                          stacked_ov_qk)
from .factored import low_rank_eigenvalues, low_rank_singular_values, ov_circuit, ov_matrix, qk_circuit, qk_matrix
from .full_circuits import (copying_score, full_ov_circuit, full_qk_circuit, pattern_of_positions, positional_pattern,
                            positional_qk_circuit, promoted_tokens, read_tokens, top_k_accuracy, composed_qk)
from .heads import concatenated_output, head_outputs, layer_head_roles
from .paths import (FrozenRun, attention_score_terms, correct_logit_effects, frozen_layer_norm, frozen_run, score_terms_by_source,
                    path_expansion, stripe_contributions, virtual_head_output)

__all__ = ["KINDS", "FrozenRun", "aligned_composition_score", "attention_score_terms", "composed_qk", "composition_score",
           "composition_scores", "concatenated_output", "copying_score", "correct_logit_effects",
           "data_composition_score", "data_composition_scores", "frozen_layer_norm", "frozen_run", "haar_rotation",
           "full_ov_circuit", "full_qk_circuit", "head_outputs", "k_composition", "layer_head_roles", "low_rank_eigenvalues",
           "low_rank_singular_values", "model_composition_scores", "ov_circuit", "ov_matrix", "path_expansion",
           "pattern_of_positions",
           "positional_pattern", "positional_qk_circuit", "promoted_tokens", "qk_circuit", "qk_matrix",
           "random_composition_scores", "read_tokens", "rotated_composition_scores", "rotated_pair_scores", "score_terms_by_source", "stacked_ov_qk",
           "stripe_contributions", "top_k_accuracy", "virtual_head_output"]
