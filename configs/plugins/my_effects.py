"""An example transform plugin, in plain numpy: name it in a config's `plugins:` list.

    plugins: [plugins/my_effects.py]
    transforms:
      - zoom: {factor: 1.02}
      - vignette: {strength: "0.3 + 0.2*sin(t/12)"}
"""

import numpy as np

from transforms import register


@register("vignette", numpy=True)
def vignette(frame, ctx, strength: float = 0.5, radius: float = 0.75):
    """Darken towards the corners: strength 0..1 at the corners, none inside `radius` (0..1).

    `radius` is a fraction of the centre-to-corner distance.
    """
    height, width = frame.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot((x - (width - 1) / 2) / (width / 2), (y - (height - 1) / 2) / (height / 2))
    distance /= np.sqrt(2)  # 1 at the corners
    falloff = np.clip((distance - radius) / max(1e-6, 1 - radius), 0.0, 1.0)
    return frame * (1.0 - strength * falloff**2)[:, :, None]
