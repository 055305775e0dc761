"""Gritting (precautionary salting): pure rules, no I/O (DESIGN.md section 5).

    geo           lon/lat to local metres, lengths, bearings
    network       the road network file (GeoJSON): segments, depots, routes, graph nodes, checks
    forecast      a bought road-weather forecast (CSV/JSON) and the night-cooling extrapolation
    sensors       which fixed sensors to trust (dead, stuck, implausible) and their offsets
    snap          gritter GPS points to the road segment they were taken on (with heading)
    estimate      road surface temperature per segment over the window (IDW + offsets + gritter)
    rates         the Transport Scotland spread-rate table
    decide        treat / monitor / none per segment with the reason; send or not per route
    plan          a route's driving order (rules.routing.carp) as GeoJSON
    instructions  the crew's ordered, readable job sheet
    assess        the whole pipeline for one run (what the runner and the benchmark call)
    synthetic     a large synthetic network and sensors for the benchmark
"""
