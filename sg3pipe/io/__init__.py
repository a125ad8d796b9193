"""File formats: atomic outputs, Parquet tables with provenance, model files."""
