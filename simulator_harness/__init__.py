"""simulator_harness package."""
