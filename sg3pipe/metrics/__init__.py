"""Image metrics used to judge reconstructions: identity similarity (:mod:`sg3pipe.metrics.identity`, dlib's
offline face-recognition network) and LPIPS with its backbone read from a configured file
(:mod:`sg3pipe.metrics.lpips_loader`; nothing is downloaded)."""
