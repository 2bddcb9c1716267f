"""The dream engine: gradient ascent over octaves through a model, per backend."""
