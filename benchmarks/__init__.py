"""Benchmarks: how fast the platform runs on this machine, and how good its routes are
against published optimal values (data/). Run through `cityops bench ...`; production
code never imports this package.
"""
