"""Writing rendered frames to GIF or MP4 through imageio (the optional ``render`` extra)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

_FFMPEG_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 10) -> None:
    """Writes frames to a video file; the format follows the file suffix.

    ``.gif`` uses imageio's pillow plugin (looping). ``.mp4``/``.mov``/``.mkv``/``.avi``/``.webm`` need
    the ``imageio-ffmpeg`` package. Pillow merges identical consecutive GIF frames into one longer frame,
    so a GIF of a still scene may read back with fewer frames but plays for the same time.

    Args:
        path: Output file.
        frames: T frames, each (H, W, 3) uint8 RGB of the same size (e.g. `TopDownRenderer.frame`).
        fps: Frames per second (> 0).

    Raises:
        ImportError: imageio (or, for MP4, imageio-ffmpeg) is not installed.
        ValueError: No frames, frames of different or wrong shapes, a bad fps, or an unknown suffix.
    """
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ImportError("write_video needs imageio: pip install 'alpagym[render]' (or imageio)") from None
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"write_video: fps must be > 0, got {fps}")
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError(f"write_video: no frames to write to {os.fspath(path)}")
    first = frames[0].shape
    if len(first) != 3 or first[2] != 3 or any(f.shape != first or f.dtype != np.uint8 for f in frames):
        raise ValueError(f"write_video: frames must all be (H, W, 3) uint8 of one size; the first is {first}")
    stack = np.stack(frames)
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix == ".gif":
        iio.imwrite(path, stack, plugin="pillow", extension=".gif", duration=1000.0 / fps, loop=0)
    elif suffix in _FFMPEG_SUFFIXES:
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            msg = f"write_video: {suffix} needs imageio-ffmpeg: pip install imageio-ffmpeg (or write a .gif)"
            raise ImportError(msg) from None
        iio.imwrite(path, stack, plugin="FFMPEG", extension=suffix, fps=fps)
    else:
        raise ValueError(f"write_video: unknown video suffix {suffix!r}; use .gif or {_FFMPEG_SUFFIXES}")
