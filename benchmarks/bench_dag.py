"""How the workflow's DAG grows with the manifest: a dry run of `all` over manifests of N videos.

Writes a manifest of N rows (every row points at the bundled sample clip, so each video's chain is the
sample's), runs ``snakemake -n`` on it in an empty working folder, and prints the wall time and the number of
jobs for each N. The target: 10,000 videos in at most 60 s on 2 cores, growing linearly. What it measured, and
what each job per video costs: docs/results.md.

    python benchmarks/bench_dag.py --sizes 1000 5000 10000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dry_run(n: int, folder: Path) -> tuple[float, int]:
    """Seconds of a dry run of `all` over an ``n``-video manifest in ``folder``, and its job count."""
    manifest = folder / f"manifest_{n}.tsv"
    sample = ROOT / "samples" / "synth_a.mp4"
    manifest.write_text("id\tpath\n" + "".join(f"v{i:06d}\t{sample}\n" for i in range(n)))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--quiet",
        "rules",
        "--workflow-profile",
        str(ROOT / "profiles" / "default"),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(ROOT / "config" / "config.yaml"),
        "--config",
        f"samples={manifest}",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"dry run of {n} videos failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)", result.stdout + result.stderr, re.MULTILINE)
    return seconds, int(total.group(1)) if total else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    args = parser.parse_args()
    print(f"{'videos':>8} {'jobs':>8} {'seconds':>8} {'ms/video':>9}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            seconds, jobs = dry_run(n, Path(folder))
        print(f"{n:>8} {jobs:>8} {seconds:>8.1f} {1000 * seconds / n:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
