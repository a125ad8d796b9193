"""Faces in video frames: landmark backends, tracking, FFHQ alignment, crop windows and crop transforms."""
