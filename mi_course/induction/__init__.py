"""Chapter 04, induction heads.

- :mod:`.head_scores`: attention patterns on repeated random tokens, previous-token and induction
  scores, per-token loss, head ablation and composition scores.

The zoo's model cards use :mod:`.head_scores`, so this package takes models and tokens as arguments
and never imports :mod:`mi_course.zoo` (that would be an import cycle).
"""
