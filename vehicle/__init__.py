"""vehicle package."""
