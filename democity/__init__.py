"""The demo town of Ashbury and `cityops demo` (docs/demo.md): a made-up town seeded into
the database, its 391 simulated devices, the rules on a schedule, and the soak benchmark
that runs it all under faults. Production code never imports this package.
"""
