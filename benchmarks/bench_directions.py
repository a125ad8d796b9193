"""Direction-finding sampling throughput: samples rendered, scored and recorded (W and StyleSpace) per second,
a batch at a time against one at a time (the official script's way), same models, same process.

Prints samples/s of both and their ratio. The shipped synthetic generator and classifier by default.

    python benchmarks/bench_directions.py
    python benchmarks/bench_directions.py --samples 64 --batch 32
"""

from __future__ import annotations

import argparse

from timing import batch_ratio

import sg3pipe.synth  # noqa: F401 - registers the scorer kind `synthetic`
from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.classifiers import load_scorer
from sg3pipe.editing.sampling import SamplingSettings, sample_chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64, help="samples per timed run")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--generator", default="models/synth_generator.safetensors")
    parser.add_argument("--classifier", default="models/synth_classifier.safetensors")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = pick_device(args.device)
    G = load_generator(args.generator, device)
    scorer = load_scorer({"kind": "synthetic", "path": args.classifier}, device)
    ratio = batch_ratio(
        lambda batch: sample_chunk(G, scorer, 0, args.samples, SamplingSettings(n=args.samples, batch=batch)),
        args.samples,
        args.batch,
        args.repeats,
        "samples",
    )
    print(f"ratio batch {args.batch} / batch 1: {ratio:.2f}x on {device}")


if __name__ == "__main__":
    main()
