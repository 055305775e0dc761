"""Gritting: network, road readings and forecasts in; decisions and route plans out (rules.gritting).

    store     the gritting tables' SQL (road network, forecasts, runs, segment and route
              decisions, plans, the decision log): the one writer of gritting_route_decisions
    pipeline  run_gritting; importing a network and a forecast; the rate matrix a council names
    log       the decision log: what it holds, the officer's entry checked, a period read back
    cli       `cityops roads ...`; log_cli: `cityops roads log` and `cityops roads ack`
"""
