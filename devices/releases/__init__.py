"""Fleet releases of the device agent: build and sign, publish, roll out in stages, watch.

    signing.py   Ed25519 key pair (the private key stays with the operator) and signatures
    build.py     the slim release tarball: the agent's packages, a manifest, optional wheels
    offers.py    the rollout's offer, signed with the operator's key when the rollout starts
    cohort.py    who a rollout targets and in which stage (pure: hashing device ids)
    staging.py   the rollout state machine: advance, hold or pause (pure)
    store.py     releases, rollouts, targets and device reports in PostgreSQL
    service.py   a rollout tick (targets -> retained config with an `update` object) and the
                 report listener (device reports on the status topic -> release_reports)
    limiter.py   the download limits the API applies (a byte token bucket, a concurrency cap,
                 one slot per device, an idle timeout)
    cli.py       `cityops release keygen|build|publish|rollout|status|pause|resume|run`

The device side (verify, install, switch, roll back) is firmware/update; docs/releases.md
tells the whole story.
"""
