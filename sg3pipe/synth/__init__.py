"""The synthetic face world: a procedural face renderer with exact ground truth, and sample clips."""

from sg3pipe.synth.params import PARAM_NAMES, params_from_normal, sample_params
from sg3pipe.synth.renderer import RenderOutput, attribute_labels, render

__all__ = ["PARAM_NAMES", "RenderOutput", "attribute_labels", "params_from_normal", "render", "sample_params"]
