"""Running host processes, shared by the offline verifier, the lab and the benchmarks."""
