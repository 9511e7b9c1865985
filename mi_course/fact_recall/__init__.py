"""Chapter 06, fact recall: where a model looks a fact up, with neurons, patching and attribution patching.

- :mod:`.patching`: activation patching, batched: a whole sweep (layers x positions, heads, MLPs)
  in a few forward passes that resume the corrupted run at each patch, checked against
  TransformerLens's ``patching`` module; where the fact sits (``lookup_sites``); ablation hooks;
- :mod:`.pairs`: clean/corrupted prompt pairs, the normalised metric, and where the lookup happens;
- :mod:`.atp`: attribution patching, every patch of a sweep from two forward passes and one backward,
  AtP*'s QK fix (exact softmax for patched queries and keys) and GradDrop;
- :mod:`.saturation`: a key attribution patching misses on saturated attention, and the QK fix finds;
- :mod:`.lookup`: the non-linear excess of the sport logit (is the lookup an AND of both names?);
- :mod:`.neurons`: key-value neurons, congruence with the unembedding, head attribution;
- :mod:`.plots`: the chapter's figures; :mod:`.widget`: the patching explorer (exact patching and AtP for one pair);
- :mod:`.exercises`: the chapter's graded exercises.
"""
