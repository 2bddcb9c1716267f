"""The render layer: the frame loop, its writers, checkpoints, frame sources and state."""
