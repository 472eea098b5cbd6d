"""Tools beside the library (benchmarks); not imported by the core."""
