"""Readers and bulk loaders for public datasets (MovieLens-100K)."""
