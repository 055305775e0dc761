"""Routing with PyVRP: bin collection plans, gritting arc routes, CVRPLIB and CARP benchmarks
(`cityops route ...`, the solver against published instances, is benchmarks/route.py).

    plan      the collection plan as a prize-collecting VRP: stops, times, GeoJSON per truck
    roads     bin rounds on the road network: snapping, matrices, legs and directions
    graph     the road graph and its Dijkstra, shared by bin rounds and arc routing
    cvrplib   CVRPLIB .vrp files and best-known values
    solver    the one place PyVRP is called (stopping rule, seed, warnings translated)
    carp      capacitated arc routing (gritting): required edges as directed clients in
              mutually exclusive groups; plans as walks over real edges
    carp_format  CARPLIB .dat files (gdb, val, egl) and carp_bks.csv
"""
