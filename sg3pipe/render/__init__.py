"""Rendering images and videos from a generator."""
