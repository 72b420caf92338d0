"""Quality flags on planted dark, bright, flat, blurred and oddly sized images."""

from __future__ import annotations

import numpy as np

from reportgen.audit import quality as qa
from reportgen.audit.pixels import pixel_statistics


def test_planted_quality_problems_get_their_flags_and_nothing_else(rng, textures):
    images = textures(rng, 40)
    images[0] = images[0] // 16                      # very dark (mean at most 15/255), sharp
    images[1] = 255 - images[1] // 16                # very bright
    images[2] = 128                                  # flat: entropy 0 (and no edges)
    # Blurred: each pixel the mean of its 8x8 neighbourhood, twice; edges lose most of
    # their Laplacian (measured: far below a tenth of the textures' median).
    x = images[3].astype(float)
    for _ in range(2):
        x = sum(np.roll(np.roll(x, dy, 0), dx, 1) for dy in range(-4, 4) for dx in range(-4, 4))
        x /= 64
    images[3] = x.astype(np.uint8)
    s = pixel_statistics(images)
    size = np.tile([[320, 240]], (40, 1))
    size[4] = [480, 150]   # aspect 3.2, 2.4x the median 4:3; shorter side 150 >= 120
    size[5] = [100, 80]    # shorter side 80 < 0.5 x 240
    flags = qa.quality_flags(s[:, 0], s[:, 4], qa.relative_sharpness(s), size)
    assert flags[0] == ["dark"] and flags[1] == ["bright"]
    assert flags[2] == ["low information", "blurry"]
    assert flags[3] == ["blurry"]
    assert flags[4] == ["odd aspect"] and flags[5] == ["small"]
    assert all(f == [] for f in flags[6:])
    assert "small" not in sum(qa.quality_flags(s[:, 0], s[:, 4], s[:, 2]), [])  # no sizes
