"""The rules' pipelines: the database in, the pure rules called, their decisions stored.

Per table family a store, the one owner of that family's SQL (the pipeline, the API's reads,
the demo and the CLIs all go through it), and a pipeline that reads through the store, calls
the rules (`rules/`, pure) and writes through the store:

    damp/       frog boxes' hourly readings -> mould state and assessments; the evidence
                report and the diary advice (rules.damp)
    open_data/  damp assessments -> weekly open statistics per area (rules.disclosure)
    bins/       bin readings -> priorities, fire/tilt events, collection plans (rules.bins,
                rules.routing); `cityops bins assess` on files
    gritting/   road network, readings and forecasts -> runs, decisions and route plans
                (rules.gritting); the decision log; `cityops roads ...`
    cli         `cityops rules ...`: run the pipelines once or every N minutes

Errors: pipelines.errors (the tree); the rules' own (rules.errors) pass through unchanged.
"""
