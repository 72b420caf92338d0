"""Image quality flags from per-image measures, each with its threshold stated here (the data
page states them too)."""

from __future__ import annotations

import numpy as np

#: Very dark: mean luminance below this (0..1).
DARK = 0.08
#: Very bright: mean luminance above this (0..1).
BRIGHT = 0.92
#: Low information: entropy of the 256-level luminance histogram below this many bits (one
#: level covers nearly the whole image; 8 bits is the most).
LOW_ENTROPY = 1.0
#: Blurry: variance of the Laplacian, over the variance of the luminance (so that a dark or
#: faint image is not blurry for its low contrast), below this share of the data set's median.
BLUR_SHARE = 0.1
#: Odd aspect: width / height off the data set's median by more than this factor.
ASPECT_FACTOR = 1.5
#: Odd size: shorter side below this share of the data set's median shorter side.
SMALL_SHARE = 0.5

#: Each flag's meaning, for the pages.
FLAGS = {
    "dark": f"mean luminance below {DARK:g} (of 1)",
    "bright": f"mean luminance above {BRIGHT:g} (of 1)",
    "low information": f"luminance-histogram entropy below {LOW_ENTROPY:g} bit",
    "blurry": f"variance of the Laplacian / variance of the luminance below {BLUR_SHARE:g} × "
              "the data set's median",
    "odd aspect": f"width/height more than {ASPECT_FACTOR:g}× off the data set's median",
    "small": f"shorter side under {SMALL_SHARE:g} × the data set's median (as stored)",
}


def quality_flags(brightness: np.ndarray, entropy: np.ndarray, sharpness: np.ndarray,
                  size: np.ndarray | None = None) -> list[list[str]]:
    """The flags of :data:`FLAGS` raised by each image.

    Args:
        brightness: (N,) mean luminance, 0..1.
        entropy: (N,) luminance-histogram entropy in bits.
        sharpness: (N,) variance of the Laplacian / variance of the luminance
            (:func:`relative_sharpness`; compared to its median).
        size: (N, 2) width and height of the files as stored (NaN or 0: unknown, never
            flagged), or None (no size flags).

    Returns:
        N lists of flag names (empty: nothing found).
    """
    checks = {"dark": brightness < DARK, "bright": brightness > BRIGHT,
              "low information": entropy < LOW_ENTROPY,
              "blurry": sharpness < BLUR_SHARE * np.median(sharpness) if len(sharpness)
              else np.zeros(0, bool)}
    if size is not None and len(size):
        wh = np.asarray(size, np.float64)
        w, h = np.where(wh > 0, wh, np.nan).T
        known = np.isfinite(w * h)
        if known.any():
            aspect = np.log(w / h)
            off = np.abs(aspect - np.nanmedian(aspect)) > np.log(ASPECT_FACTOR)
            short = np.minimum(w, h)
            checks["odd aspect"] = known & off
            checks["small"] = known & (short < SMALL_SHARE * np.nanmedian(short))
    return [[name for name, hit in checks.items() if hit[i]] for i in range(len(brightness))]


def relative_sharpness(stats: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian over the variance of the luminance (each at least 1 gray
    level squared) of (N, 5) :func:`reportgen.audit.pixels.pixel_statistics` rows."""
    return np.expm1(stats[:, 2]) / np.maximum((255 * stats[:, 1]) ** 2, 1.0)
