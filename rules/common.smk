# Shared helpers for all rule files: paths to models, the manifest, the Python interpreter.
from pathlib import Path


def model_path(name):
    """Path of a configured model (config `models.NAME`), relative to the workflow when not absolute."""
    path = Path(config["models"][name])
    return str(path if path.is_absolute() else Path(workflow.basedir) / path)
