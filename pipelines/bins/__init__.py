"""Bins: readings in; priorities, fire/tilt events and collection plans out (rules.bins, rules.routing).

    store     the bins tables' SQL: bins with settings and readings, depots, priorities,
              events, plans and their stops
    pipeline  run_bins
    cli       `cityops bins assess`: the same rules on CSV files, no database
"""
