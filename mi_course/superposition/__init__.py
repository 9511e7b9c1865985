"""Chapter 03, toy models of superposition (Elhage et al. 2022).

- :mod:`.model`: the batched toy model, its data, loss and trainer, and sweeps over settings;
- :mod:`.geometry`: reading the weights (feature dimensionality, superposition, phases);
- :mod:`.plots`: the chapter's figures; :mod:`.widget`: the superposition explorer;
- :mod:`.exercises`: the chapter's graded exercises (references are the functions above).

The notebook imports the package as ``tms``: ``from mi_course import superposition as tms``.
"""

from .geometry import (PHASES, STICKY_VALUES, adjacent_angles, antipodal_pairs, angle_between, basis_alignment, classify_phase,
                       dimensions_per_feature, exhibits_superposition, feature_dimensionality,
                       feature_norms, is_linear, rotate_hidden)
from .model import (ToyModel, TrainConfig, best_of_seeds, final_loss, generate_batch, relu_hidden_forward, sweep,
                    tms_forward, tms_loss, train, train_instances_in_a_loop)

__all__ = ["PHASES", "STICKY_VALUES", "ToyModel", "TrainConfig", "adjacent_angles", "angle_between", "antipodal_pairs", "basis_alignment",
           "best_of_seeds", "classify_phase", "dimensions_per_feature", "exhibits_superposition",
           "feature_dimensionality", "feature_norms", "final_loss", "generate_batch", "is_linear",
           "relu_hidden_forward", "rotate_hidden", "sweep", "tms_forward", "tms_loss", "train",
           "train_instances_in_a_loop"]
