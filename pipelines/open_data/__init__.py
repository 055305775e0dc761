"""Open damp statistics: weekly snapshots per area (rules.disclosure decides who counts).

    store     the open_damp_* tables' SQL: what was published, the week's assessments
    pipeline  publish_snapshots, and the published row's shape
"""
