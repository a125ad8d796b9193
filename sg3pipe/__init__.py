"""sg3pipe: invert, edit and re-render face videos with StyleGAN3, at dataset scale."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sg3pipe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__", "load_encoder", "load_generator"]


def __getattr__(name):
    # Imported lazily so that light modules (tables, video) do not pay for importing torch.
    if name == "load_generator":
        from sg3pipe.networks.loading import load_generator

        return load_generator
    if name == "load_encoder":
        from sg3pipe.networks.restyle import load_encoder

        return load_encoder
    raise AttributeError(f"module 'sg3pipe' has no attribute {name!r}")
