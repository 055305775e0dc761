#!/bin/sh
# Runs once, when the database is first created. Grafana's role is no longer made here:
# migration 0023 creates cityops_grafana (reporting views only) with the other services'
# roles, and `cityops db roles --apply` gives them logins (docs/operations.md, "Database
# roles"). This file used to grant a grafana_reader every table; 0023 takes that back.
set -eu
