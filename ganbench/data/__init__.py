"""Data: what the core does to every dataset (classes, resize, channels, shots, cache), the data roots, listings."""
