"""Chapter 01, the residual stream: take a transformer apart into the pieces that write to it.

- :mod:`.prompts`: the world's fact-recall prompts (and famous athletes for hub models), held-out text;
- :mod:`.decompose`: embeddings by hand, the residual stream as a sum of components, the null-space test of reading;
- :mod:`.attribution`: direct logit attribution, the logit lens, answer ranks;
- :mod:`.weights`: a model as a dict of weights, its forward pass, folding LayerNorm, centring, rotations, kurtosis;
- :mod:`.memory`: neurons that erase what they read (input/output weight cosines);
- :mod:`.local`: local processing in early layers (full prompt vs its last k tokens);
- :mod:`.plots`: the chapter's figures; :mod:`.widget`: the residual-stream explorer;
- :mod:`.exercises`: the chapter's graded exercises (references are the functions above).
"""
