"""Alerts: from rules and device health to the right people, once, with escalation.

    model.py        severities, Signal (what a rule says about one cause), Alert, Transition
    rules.py        the alert rules: facts -> signals (pure)
    case_clocks.py  the damp cases' Awaab's Law clocks overdue or due soon: one alert per case and cause (pure)
    lifecycle.py    open / acknowledged / resolved, hysteresis, escalation (pure, takes `now`)
    preferences.py  subscriptions: who wants which alerts, by which channel, quiet hours (pure)
    messages.py     what each channel says, backoff, HTTP failure classes (pure)
    signing.py      webhook HMAC-SHA256 signatures and their verification (pure)
    facts.py        load the rules' facts from the database (adapter)
    store.py        alerts, history, subscriptions and the outbox in the database (adapter)
    senders.py      webhook (httpx), email (aiosmtplib), MQTT (aiomqtt) (adapters)
    runner.py       evaluate -> outbox -> deliver, once or in a loop with a clock
    cli.py          `cityops alerts ...`
    errors.py       AlertsError and its tree

docs/alerts.md explains the rules, the lifecycle, the channels and the delivery guarantees.
"""
