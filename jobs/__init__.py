"""Crew jobs: an operator sends a crew a gritting route or a bin truck's round; the crew starts
and completes it, and completing feeds back to the pipelines.

    lifecycle  assign (gritting: a route the latest run sends, or an officer overrode to send;
               bins: one truck of a collection plan), start, complete; the orchestrator
    feedback   what completing records (pure): the segments and salt a plan spread, the bins
               emptied less those skipped
    store      the jobs, bin_collections and gritting_treatments tables' SQL
    errors     the tree: JobNotFound, JobConflict, InvalidJob

The decisions and plans a job points at are read through the pipelines' stores
(pipelines.gritting.store, pipelines.bins.store). The API maps the errors to HTTP
(ops_api/errors.py); the demo's operator assigns through the lifecycle too.
"""
