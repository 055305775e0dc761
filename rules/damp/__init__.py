"""Damp and mould in homes: cold-spot surface conditions, the VTT mould index, risk, diary, reports.

    surface   fRsi cold-spot temperature and humidity; outdoor temperature from the nearest sensor
    mould     the VTT (Hukka-Viitanen) mould index as an hourly state
    quality   data faults: missing hours, RH stuck at 0 or 100, clocks that jumped
    risk      one level per home with reasons in plain words and what changed this week
    rolling   the same, one hour at a time, O(homes): what a long-running service keeps
    diary     householders' activities linked to humidity spikes; advice
    report    the landlord evidence page (HTML with inline SVG)
    council   homes ranked for officers, area statistics for open data
"""
