"""Ingest health: messages and readings per second, lag, dead letters, batch latency.

The database-backed panels need nothing but the database: every reading carries the time
ingest committed it (`received_at`, one value per MQTT message), so messages and readings
per second and the measured-to-committed lag come from the readings tables; refused input
is in `dead_letters`. What only the running consumers know (batch commit time, messages in
flight, broker connection, database retries) is on their Prometheus endpoint
(ingest/metrics.py), in the panels that use the Prometheus data source.
"""

from __future__ import annotations

from dashboards.boards.common import KIND
from dashboards.model import Board, PromQL, Sql, Threshold, stat, table, timeseries

# the readings committed in the time range, by kind; the `ts` bound lets the planner use the
# ts index and chunk exclusion (readings measured more than 7 days before they arrived are
# outside it: a device's spool rarely holds that much)
COMMITTED = """
SELECT received_at, ts, device_id, kind FROM reporting.ingest_readings
WHERE $__timeFilter(received_at) AND ts > $__timeFrom()::timestamptz - interval '7 days'
  AND kind IN (${kind:sqlstring})
"""

READINGS_PER_S = Sql(f"""
SELECT $__timeGroupAlias(received_at, $__interval), kind AS metric,
       count(*) * 1000.0 / $__interval_ms AS value
FROM ({COMMITTED}) r
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")

MESSAGES_PER_S = Sql(f"""
SELECT $__timeGroupAlias(received_at, $__interval), kind AS metric,
       count(DISTINCT (device_id, received_at)) * 1000.0 / $__interval_ms AS value
FROM ({COMMITTED}) r
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")

LAG = Sql(f"""
SELECT $__timeGroupAlias(received_at, $__interval),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)) AS "p50",
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)) AS "p95"
FROM ({COMMITTED}) r
GROUP BY 1
ORDER BY 1
""", format="time_series")

LAST_COMMIT = Sql("""
SELECT k.kind, extract(epoch FROM now() - (
    SELECT max(r.received_at) FROM reporting.ingest_readings r
    WHERE r.kind = k.kind AND r.ts > now() - interval '7 days')) AS seconds_ago
FROM unnest(ARRAY['bin', 'frog', 'road']) AS k(kind)
WHERE k.kind IN (${kind:sqlstring})
ORDER BY k.kind
""")

DEAD_LETTERS_RATE = Sql("""
SELECT $__timeGroupAlias(received_at, $__interval), split_part(reason, ':', 1) AS metric, count(*) AS value
FROM reporting.dead_letters
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1
""", format="time_series")

DEAD_LETTERS = Sql("""
SELECT received_at AS "time", device_id, topic, reason, bytes
FROM reporting.dead_letters
WHERE $__timeFilter(received_at)
ORDER BY received_at DESC
LIMIT 100
""")

BATCH_SECONDS = (
    PromQL("histogram_quantile(0.5, sum by (le) (rate(cityops_ingest_batch_seconds_bucket[$__rate_interval])))",
           "p50"),
    PromQL("histogram_quantile(0.99, sum by (le) (rate(cityops_ingest_batch_seconds_bucket[$__rate_interval])))",
           "p99"),
)
CONSUMERS = (
    PromQL("sum by (instance) (cityops_ingest_broker_connected)", "connected {{instance}}"),
    PromQL("sum by (instance) (cityops_ingest_in_flight_messages)", "in flight {{instance}}"),
    PromQL("sum by (instance) (rate(cityops_ingest_database_retries_total[$__rate_interval]))",
           "db retries/s {{instance}}"),
)


def board() -> Board:
    return Board(
        uid="cityops-ingest",
        title="CityOps: ingest health",
        description="Telemetry into the database: throughput, lag, refused input; consumer metrics from Prometheus.",
        variables=(KIND,),
        time_from="now-6h",
        refresh="30s",
        panels=(
            timeseries("Readings committed per second", READINGS_PER_S, unit="reqps",
                       description="New rows in the readings tables by the time ingest committed them."),
            timeseries("Messages committed per second", MESSAGES_PER_S, unit="reqps",
                       description="MQTT messages that brought new readings (one received_at per message); "
                                   "pure duplicates are on the Prometheus counter."),
            timeseries("Lag: measured to committed", LAG, unit="s",
                       description="received_at - ts. Replayed backlogs from offline devices raise p95."),
            stat("Seconds since the last commit", LAST_COMMIT, unit="s", width=6, height=8,
                 fields="/^seconds_ago$/",
                 thresholds=(Threshold(None, "green"), Threshold(900, "orange"), Threshold(3600, "red"))),
            timeseries("Dead letters by reason", DEAD_LETTERS_RATE, width=6,
                       description="Refused messages and readings per interval (reason up to its first ':')."),
            table("Latest dead letters", DEAD_LETTERS, width=24, height=8),
            timeseries("Batch commit time (Prometheus)", *BATCH_SECONDS, unit="s",
                       description="cityops_ingest_batch_seconds from each consumer's /metrics."),
            timeseries("Consumers (Prometheus)", *CONSUMERS,
                       description="Broker connection, messages in flight and database retries per consumer."),
        ),
    )
