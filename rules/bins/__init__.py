"""Bins: pure rules from ultrasonic readings to collection priorities (numpy, no I/O).

    fill       distance -> fill level: calibration, blind zone, temperature, spurious pings
    forecast   emptying detection, fill rate with a weekday profile, time to threshold,
               overflow risk, fire and tilt events
    priority   score, mandatory flag and reasons in words, vectorised
    assess     the runner's core: readings per bin -> forecasts, events, priorities
    insight    bins that overflow often or never fill; dynamic vs fixed collection simulated
"""
