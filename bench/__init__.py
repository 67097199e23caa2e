"""The benchmark harness (make bench) and older one-off benchmarks; see bench/README.md."""
