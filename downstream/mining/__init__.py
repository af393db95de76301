"""The mining service: finding the segments worth a look (similar scenes, rare ones, filtered slices).

Its first layer is :mod:`downstream.mining.index`, the vector index over the segments'
embeddings (``visual_embedding[512]``, ``bev_embedding[256]``) with metadata filters evaluated
inside the index. The query planner, scoring and jobs build on it.
"""

__all__ = ["errors", "index"]
