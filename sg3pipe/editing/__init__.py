"""Editing: attribute scorers, direction finding, edits, disentanglement metrics."""
