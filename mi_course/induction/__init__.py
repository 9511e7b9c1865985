"""Chapter 04, induction heads.

- :mod:`.head_scores`: attention patterns on repeated random tokens; previous-token, current-token,
  first-token and induction scores; per-token loss; head ablation; naming heads (also used by the
  zoo's model cards);
- :mod:`.view`: attention patterns drawn with circuitsvis, offline and without re-sending its bundle;
- :mod:`.circuit`: the circuit from the weights (the K-composition circuit and its diagonal);
- :mod:`.paths`: path ablation (one layer-0 head removed from the query, key or value input of layer-1 heads);
- :mod:`.phases`: the in-context learning score, and the scores at each training checkpoint;
- :mod:`.natural`: induction in the world's stories (repeated first names), with the world's labels;
- :mod:`.plots`: the chapter's figures; :mod:`.widget`: the checkpoint explorer;
- :mod:`.handbuilt`: a two-layer attention-only model whose heads the learner writes by hand;
- :mod:`.exercises`: the chapter's graded exercises (:mod:`.handbuilt_exercises`: those of the hand-built circuit).

The zoo's model cards use :mod:`.head_scores`, so this package takes models, tokens and labels as
arguments and never imports :mod:`mi_course.zoo` (that would be an import cycle).
"""
