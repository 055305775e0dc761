"""Simulated devices with believable physics, and synthetic histories, for the demo, the
tests and benchmarks. Not production: the agent, the rules, the services and the API never
import this package, and no device release carries it.

Pure physics (`weather`, `homes`, `roads`, `bins`, `gritter`) behind simulated drivers
that implement the same `read()` interface as the real ones, driven by a SimClock:
deterministic under a seed, as fast as `speed` asks. `fleet` builds whole agents;
`command` is `cityops agent simulate`; `synthetic/` holds generated histories.
"""
