"""Metrics machinery: Inception weights and features, FID/KID arithmetic, reference features, folder FID."""
