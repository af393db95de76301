"""The frozen regression suite: one scenario spec per .toml file, run by ``avdata-sim regress``."""
