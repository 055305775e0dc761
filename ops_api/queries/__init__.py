"""The data behind the API's resource routes: thin SQL and pure shaping, one module per resource.

    readings    time series downsampled into buckets (raw date_bin, or the hourly views)
    devices     the registry as each role may see it, and device health
    households  current reading, risk with advice, history, diary, evidence report
    gritting    the latest run's decisions, routes to send, plans
    bins        priorities and collection plans per truck
    jobs        crew jobs as JSON, with their GeoJSON in driving order and steps (the lifecycle: jobs/)
    sheet       the printable job sheet (pure HTML)
    alerts      alerts as each role may see them, and a user's in-app feed
    open_data   aggregated, anonymised data as CSV and GeoJSON

Routes decide who may see what; these functions take the ids they are given.
"""
