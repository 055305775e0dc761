"""The device side of fleet updates: fetch, verify, install side by side, switch, roll back.

On the device (root = /opt/cityops-agent by default):

    versions/<v>/src/...      one installed release each (its manifest, code, optional site/ of wheels)
    current  -> versions/<v>  what the launcher runs; absent: the launcher's own ("factory") install
    previous -> versions/<u>  what `current` was before the last switch: the rollback target
    state/                    downloads (resumable .part files), pending.json, trial.json,
                              failed.json, health markers, the report outbox

Who does what:
    launcher.py  the supervisor systemd runs: starts the agent of `current`, switches to a freshly
                 installed version, waits for its health marker, rolls back on a crash loop or
                 a missed health deadline, never removes the version it could fall back to
    run.py       the agent process (any version): the device agent plus the updater
    updater.py   offer -> check it (offers.py: signed, unexpired, current rollout, newer) ->
                 download (resume) from the configured base (source.py, download.py) ->
                 verify sha256 + Ed25519 -> free-space check -> install -> ask the launcher
                 to switch (exit code 75)
    agent.py     the agent subclass: reads the `update` object of the retained config topic,
                 publishes the outbox's reports on the status topic, writes the health marker
                 after its first confirmed reading

Reports are JSON on `cityops/v1/devices/{id}/status`, not retained (the retained
`online`/`offline` stays as it is; ingest ignores other payloads there).
"""
