"""Routing with PyVRP: bin collection plans and CVRPLIB benchmarks.

    plan      the collection plan as a prize-collecting VRP: stops, times, GeoJSON per truck
    cvrplib   CVRPLIB .vrp files and best-known values
    solver    the one place PyVRP is called (stopping rule, seed, warnings translated)
    cli       `cityops route cvrp FILE.vrp`
"""
