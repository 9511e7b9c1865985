"""Chapter 06, fact recall (in progress: the chapter's issue adds the rest).

- :mod:`.patching`: activation patching, batched: a whole sweep (layers x positions, heads, MLPs)
  in one chunked forward pass, checked against TransformerLens's ``patching`` module; where the fact
  sits (``lookup_sites``); zero- and mean-ablation hooks;
- :mod:`.atp`: attribution patching, every patch of a sweep from two forward passes and one backward,
  AtP*'s QK fix (exact softmax for patched queries and keys) and GradDrop;
- :mod:`.lookup`: the non-linear excess of the sport logit (is the lookup an AND of both names?);
- :mod:`.neurons`: key-value neurons, congruence with the unembedding, head attribution.
"""
