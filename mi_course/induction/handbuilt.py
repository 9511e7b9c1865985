"""An induction circuit written by hand: a two-layer attention-only model with fixed embeddings (chapter 04)."""
