"""Gritting (precautionary salting): pure rules, no I/O (docs/gritting.md, docs/science.md#gritting).

    geo           lon/lat to local metres, lengths, bearings
    network       the road network file (GeoJSON): segments, depots, routes, graph nodes, checks
    forecast      a bought road-weather forecast (CSV/JSON; per sensor, segment or area), the night's class
    energy        the night model: a surface energy balance per sensor, with a cautious bound
    sensors       which fixed sensors to trust (dead, implausible; stuck against the neighbours)
    snap          gritter GPS points to the road segment they were taken on (with heading)
    estimate      road surface temperature per segment over the window (IDW + offsets + gritter)
    rates         spread-rate matrices: NWSRG Practical Guide, Transport Scotland 2010, a council's own
    decide        treat / monitor / none per segment with the reason; send, not needed or unknown per route
    plan          a route's driving order (rules.routing.carp) as GeoJSON
    instructions  the crew's ordered, readable job sheet
    assess        the whole pipeline for one run (what the runner, `roads decide` and the benchmark call)
    scenario      a night from a JSON file (`cityops roads decide`), checked field by field
"""
