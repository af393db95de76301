"""Durable state of the daemon: the metadata DB (:mod:`cloud_ingest.storage.metadata`) and the
object store (:mod:`cloud_ingest.storage.objects`), each a Protocol with back-ends chosen by name.
"""
