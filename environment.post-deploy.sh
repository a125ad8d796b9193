#!/usr/bin/env bash
# Run by Snakemake (--use-conda) inside the new conda environment of environment.yml, from the workflow's
# working folder: installs this checkout's sg3pipe into it (its dependencies come from environment.yml).
# Set SG3PIPE_CHECKOUT when the working folder (--directory) is not the checkout.
set -euo pipefail
python -m pip install --no-deps -e "${SG3PIPE_CHECKOUT:-.}"
