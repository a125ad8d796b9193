"""The ``sg3pipe`` command line: one subcommand per job, registered with :func:`command`.

To add a subcommand, decorate a function ``run(args) -> int`` (the exit status) with
``@command(name, help, add_arguments)`` where ``add_arguments(parser)`` declares its arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    help: str  # one line, shown by `sg3pipe --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated ``run(args) -> int`` as ``sg3pipe NAME``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, add_arguments, run)
        return run

    return register


def _add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="generator file: official .pkl, editing-repo .pt or sg3pipe .safetensors")


@command("inspect", "print a generator file's format, SHA-256, config and layer table", _add_inspect_arguments)
def inspect_generator(args: argparse.Namespace) -> int:
    from sg3pipe.networks.loading import load_generator

    G = load_generator(args.path)
    print("\n".join(describe_generator(G)))
    return 0


def describe_generator(G) -> list[str]:
    """Lines describing a loaded generator: source, config, resolution, ``num_ws``, layers, parameter count."""
    source = getattr(G, "source", {})
    synthesis = G.synthesis
    lines = [
        f"path:        {source.get('path', '-')}",
        f"format:      {source.get('format', '-')}",
        f"sha256:      {source.get('sha256', '-')}",
        f"config:      {json.dumps(G.init_kwargs, sort_keys=True)}",
        f"resolution:  {G.img_resolution}x{G.img_resolution}, {G.img_channels} channels",
        f"num_ws:      {G.num_ws} (w_dim {G.w_dim}, z_dim {G.z_dim}, c_dim {G.c_dim})",
        f"parameters:  {sum(p.numel() for p in G.parameters()):,}",
        "",
        f"{'layer':<16} {'size':>5} {'channels':>8} {'cutoff':>8} {'sampling rate':>13} {'up':>3} {'down':>4}",
    ]
    inp = synthesis.input_spec
    lines.append(f"{'input':<16} {inp.size:>5} {inp.channels:>8} {inp.bandwidth:>8.2f} {inp.sampling_rate:>13g}")
    for name in synthesis.layer_names:
        layer = getattr(synthesis, name)
        spec = layer.spec
        lines.append(
            f"{name:<16} {spec.out_size:>5} {spec.out_channels:>8} {spec.out_cutoff:>8.2f} "
            f"{spec.out_sampling_rate:>13g} {layer.up_factor:>3} {layer.down_factor:>4}"
        )
    return lines


def _add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="generator file: official .pkl, editing-repo .pt or sg3pipe .safetensors")
    parser.add_argument("output", help="sg3pipe generator file to write (.safetensors)")


@command("convert", "write a generator file in sg3pipe's format (safetensors, no pickle)", _add_convert_arguments)
def convert_generator(args: argparse.Namespace) -> int:
    from sg3pipe.networks.loading import load_generator, save_generator
    from sg3pipe.provenance import file_sha256

    G = load_generator(args.input)
    out = save_generator(G, args.output)
    print(f"read   {args.input} ({G.source['format']}, sha256 {G.source['sha256']})")
    print(f"wrote  {out} (sg3pipe, sha256 {file_sha256(out)})")
    return 0


def _add_manifest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="VoxCeleb folder of id* folders (id*/CLIP/*.mp4, or VoxCeleb1's *.txt tracks)")
    parser.add_argument("--out", required=True, help="manifest TSV to write (the workflow's `samples`)")
    parser.add_argument("--videos", help="folder of VoxCeleb1's YouTube videos (CLIP.mp4), for *.txt tracks")
    parser.add_argument("--identities", type=int, help="take this many identities (default: all)")
    parser.add_argument("--clips-per-identity", type=int, help="and at most this many clips of each (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset draw")


@command(
    "manifest", "write a manifest from a VoxCeleb1 or VoxCeleb2 folder, with a seeded subset", _add_manifest_arguments
)
def write_manifest(args: argparse.Namespace) -> int:
    from sg3pipe.voxceleb import build_manifest

    manifest = build_manifest(args.root, args.out, args.videos, args.identities, args.clips_per_identity, args.seed)
    print(f"wrote  {args.out}: {len(manifest)} videos")
    if manifest.attrs["missing_videos"]:
        print(f"left out {manifest.attrs['missing_videos']} face tracks whose video is not in --videos")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``sg3pipe`` parser with one subparser per registered command."""
    parser = argparse.ArgumentParser(
        prog="sg3pipe", description="Invert, edit and re-render face videos with StyleGAN3."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        sub = subparsers.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sub)
        sub.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sg3pipe COMMAND ...``; returns the exit status (1, with a one-line message, for a bad input file)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:
        if not _is_input_error(err):
            raise
        print(f"sg3pipe {args.command}: error: {err}", file=sys.stderr)
        return 1


def _is_input_error(err: Exception) -> bool:
    # sg3pipe's own errors (GeneratorFileError, VideoError, ...) name the file and the fix, so a traceback
    # would only bury the message; any other ValueError is a bug and keeps its traceback.
    return isinstance(err, FileNotFoundError) or type(err).__module__.startswith("sg3pipe.")


if __name__ == "__main__":
    sys.exit(main())
