"""Video files: locating ffmpeg, probing, decoding and writing."""
