"""Media files in and out: images, videos written, clips decoded."""
