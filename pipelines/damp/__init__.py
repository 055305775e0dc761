"""Damp: frog boxes' readings in, mould state and assessments out (rules.damp decides).

    store     the damp tables' SQL: boxes and their settings, hourly series, mould state,
              assessments, the diary
    pipeline  run_damp; the evidence report's data; the diary against the readings
"""
