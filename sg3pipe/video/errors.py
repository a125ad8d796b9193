"""The error a bad input video raises: it names the file, says what is wrong (in ffmpeg's words where it
has some) and how to fix it."""

from __future__ import annotations

import os
import re

# The fix that works for nearly every damaged or unusual input: let ffmpeg decode what it can and write a
# plain H.264 file that every stage of the pipeline reads.
REENCODE_FIX = "re-encode it with `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4` and list OUT.mp4 instead"


class VideoError(ValueError):
    """A video file cannot be used: missing, empty, corrupt, without a video stream, or undecodable."""

    def __init__(self, path: str | os.PathLike, problem: str, fix: str = REENCODE_FIX):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"video {self.path}: {problem}; fix: {fix}")

    def __reduce__(self):
        # Rebuilt from its parts, so it survives pickling (e.g. from a worker process).
        return type(self), (self.path, self.problem, self.fix)


def ffmpeg_reason(stderr: str) -> str:
    """ffmpeg's own words for what went wrong: its last distinct messages, without the stream listing."""
    messages = []
    for line in stderr.splitlines():
        text = re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
        listing = line.startswith(" ") or text.startswith(("Input #", "Output #", "Error opening input file"))
        if text and not listing and text not in messages:
            messages.append(text)
    return "; ".join(messages[-2:]) if messages else "no message"
