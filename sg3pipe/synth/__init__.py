"""The synthetic face world: a procedural face renderer with exact ground truth, sample clips, and the small
models trained on it. Importing it registers its plug-ins (:mod:`sg3pipe.synth.plugins`): the scorer kind
``synthetic``."""

from sg3pipe.synth import plugins  # noqa: F401,E402 - registers the scorer kind `synthetic`
from sg3pipe.synth.params import PARAM_NAMES, params_from_normal, sample_params
from sg3pipe.synth.renderer import RenderOutput, attribute_labels, render

__all__ = ["PARAM_NAMES", "RenderOutput", "attribute_labels", "params_from_normal", "render", "sample_params"]
