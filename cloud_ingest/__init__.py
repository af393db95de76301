"""cloud_ingest package."""
