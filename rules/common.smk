# Shared helpers for all rule files: paths to models, the manifest, the Python interpreter.
from pathlib import Path


def model_path(name):
    """Path of a configured model (config `models.NAME`), relative to the workflow when not absolute."""
    path = Path(config["models"][name])
    return str(path if path.is_absolute() else Path(workflow.basedir) / path)


def video_ids():
    """The ids of the manifest's videos (config `samples`), in manifest order."""
    from sg3pipe.manifest import load_manifest

    return list(load_manifest(config["samples"])["id"])
