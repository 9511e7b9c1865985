"""Chapter 05, sparse autoencoders (seed note 002).

- :mod:`.model`: the SAE, its forward pass and loss, keeping the decoder unit-norm, folding
  the pre-encoder bias, and the basic metrics (L0, variance explained);
- :mod:`.training`: the trainer (Adam, decoder-norm projection, dead-feature remedies);
- :mod:`.dead`: ghost grads (with the seed's fixes) and Anthropic's resampling;
- :mod:`.toy`: sparse data from known features, MMCS, the width sweep;
- :mod:`.activations`: activations of a language model at one hook, to train an SAE on;
- :mod:`.evaluate`: loss recovered when the reconstruction is spliced in, dead and dense features;
- :mod:`.labels`: the world's hidden labels token by token, and each feature's AUROC against them;
- :mod:`.ito`: inference-time optimisation, matched and gradient pursuit over the decoder;
- :mod:`.dashboard`: a feature's top activating contexts, activation histogram and logit effects;
- :mod:`.autointerp`: scoring an explanation by the correlation of its predictions with the truth;
- :mod:`.steering`: adding a direction at one layer; success, collateral loss, the Pareto frontier;
- :mod:`.saelens_format`: reading and writing SAELens's on-disk format (without the package);
- :mod:`.recipes`: the SAEs the course ships (``data/<name>/``, with a card and checksums), ``mi-course train``;
- :mod:`.plots`: the chapter's figures; :mod:`.widget`: the feature browser;
- :mod:`.exercises`: the chapter's graded exercises (references are the functions above).
"""

from . import autointerp, dashboard, evaluate, ito, labels, saelens_format, steering
from .activations import collect_activations
from .dead import ghost_grads_loss, resample_dead
from .model import (SAE, fold_pre_encoder_bias, l0, remove_parallel_component, sae_forward, sae_loss, unit_rows,
                    variance_explained)
from .toy import TOY_CONFIG, ToyData, half_dead_sae, knee, mmcs, toy_data, train_toy_sae, width_sweep
from .training import SAETrainConfig, train_sae

__all__ = ["SAE", "SAETrainConfig", "TOY_CONFIG", "ToyData", "autointerp", "collect_activations",
           "dashboard", "evaluate", "fold_pre_encoder_bias", "ghost_grads_loss", "half_dead_sae", "ito", "knee", "l0", "labels", "mmcs",
           "remove_parallel_component", "resample_dead", "sae_forward", "sae_loss", "saelens_format", "steering",
           "toy_data", "train_sae", "train_toy_sae", "unit_rows", "variance_explained", "width_sweep"]
