"""Benchmarks: each measures our figure beside the physical limit measured in the same run."""
