"""Crew jobs: an operator sends a crew a gritting route or a bin truck's round; the crew starts
it, marks its stops as it goes (offline too) and completes it, and completing feeds back to
the pipelines. Operators may cancel or reassign an open job.

    lifecycle  assign (gritting: a route the latest run sends, or an officer overrode to send;
               bins: one truck of a collection plan; an optional crew), start, record_marks,
               complete, cancel, reassign; the orchestrator
    progress   the marks' rules (pure): which mark wins a stop, conflicts, progress counts,
               who may still mark after a reassignment
    feedback   what completing records (pure): the segments and salt a plan spread, the bins
               emptied less those skipped
    store      the jobs, job_marks, job_events, bin_collections and gritting_treatments SQL
    errors     the tree: JobNotFound, JobConflict (JobCancelled), InvalidJob

The decisions and plans a job points at are read through the pipelines' stores
(pipelines.gritting.store, pipelines.bins.store). The API maps the errors to HTTP
(ops_api/errors.py); the demo's operator assigns through the lifecycle too.
"""
