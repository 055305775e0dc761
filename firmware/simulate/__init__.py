"""Simulated devices with believable physics, for the demo, the tests and benchmarks.

Pure physics (`weather`, `homes`, `roads`, `bins`, `gritter`) behind simulated drivers
that implement the same `read()` interface as the real ones, driven by a SimClock:
deterministic under a seed, as fast as `speed` asks. `fleet` builds whole agents.
"""
