"""Helpers for the out-of-core tests: datasets written to real Zarr stores, subprocess scripts."""
