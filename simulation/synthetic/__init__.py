"""Synthetic histories for tests and benchmarks: homes' climate (damp), bins' fill (bins),
a large road network with its sensors (gritting). Not production: nothing in the rules,
services or API imports them.
"""
