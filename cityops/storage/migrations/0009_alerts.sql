-- Alerts (alerts/): the alerts themselves (one open per cause), their full history,
-- who wants which alerts by which channel, the outbox the sender works through, and
-- the in-app feed the API serves per user. Plain tables on both back ends.

CREATE TABLE alerts (
    alert_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule             text NOT NULL,
    cause            text NOT NULL,      -- e.g. battery_low:frog-0042; one open alert per cause
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    title            text NOT NULL,
    detail           text NOT NULL DEFAULT '',
    device_id        text,
    household_id     text,
    area             text,
    route_id         text,
    value            real,
    opened_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    escalation_level integer NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    escalated_at     timestamptz,
    clear_since      timestamptz,        -- the condition has been clear since then (hysteresis in time)
    last_firing_at   timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_open_per_cause ON alerts (cause) WHERE state <> 'resolved';
CREATE INDEX alerts_opened_idx ON alerts (opened_at);
CREATE INDEX alerts_household_idx ON alerts (household_id, opened_at) WHERE household_id IS NOT NULL;

-- Who gets what: keyed by user_id text and role until the users table (issue #9) lands.
-- Validated by the runner, not only here: a row it cannot use gets `problem` and is skipped.
CREATE TABLE alert_subscriptions (
    subscription_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          text NOT NULL,
    role             text NOT NULL,
    channel          text NOT NULL,      -- email | webhook | mqtt | feed
    target           text NOT NULL DEFAULT '',   -- address, URL, device id or '@device'; '' for feed
    secret           text,               -- webhook: the HMAC key shared with the receiver
    rules            text[],             -- NULL: the role's default rules
    min_severity     text NOT NULL DEFAULT 'warning',
    household_id     text,               -- only this household's alerts (required for householders)
    quiet_start      time,               -- local time in `timezone`; held notifications go at quiet_end
    quiet_end        time,
    timezone         text NOT NULL DEFAULT 'Europe/London',
    escalation_level integer NOT NULL DEFAULT 0,  -- 0: ordinary; N: escalations reaching level N or more
    enabled          boolean NOT NULL DEFAULT true,
    problem          text,               -- why the runner could not use it (NULL: fine)
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_subscriptions_user_idx ON alert_subscriptions (user_id);

-- The outbox: written in the same transaction as the transition; the sender claims due
-- rows (FOR UPDATE SKIP LOCKED, then a lease), sends, and marks them sent or failed.
CREATE TABLE alert_outbox (
    outbox_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- the idempotency key
    alert_id         bigint NOT NULL REFERENCES alerts (alert_id),
    event_id         bigint NOT NULL,    -- the transition (alert_events) it tells about
    subscription_id  bigint NOT NULL REFERENCES alert_subscriptions (subscription_id),
    user_id          text NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook', 'mqtt', 'feed')),
    target           text NOT NULL,
    payload          jsonb NOT NULL,     -- what is sent, fixed at the transition: a retry sends the same
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    due_at           timestamptz NOT NULL,
    claimed_until    timestamptz,        -- a sender holds it until then; after that it is due again
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (event_id, subscription_id)   -- one notification per transition and recipient
);
CREATE INDEX alert_outbox_due_idx ON alert_outbox (due_at) WHERE status = 'pending';

-- Every transition and every notification attempt, in order.
CREATE TABLE alert_events (
    event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint NOT NULL REFERENCES alerts (alert_id),
    at               timestamptz NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('opened', 'worsened', 'acknowledged', 'escalated', 'resolved',
                                                   'held', 'sent', 'failed', 'dead_lettered')),
    severity         text,
    escalation_level integer,
    outbox_id        bigint REFERENCES alert_outbox (outbox_id),
    actor            text,               -- who acknowledged; the channel for attempts
    detail           text NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, event_id);

-- The in-app feed: what the API serves a user (GET /me/notifications).
CREATE TABLE notifications (
    notification_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          text NOT NULL,
    alert_id         bigint NOT NULL REFERENCES alerts (alert_id),
    outbox_id        bigint NOT NULL UNIQUE REFERENCES alert_outbox (outbox_id),
    severity         text NOT NULL,
    title            text NOT NULL,
    body             text NOT NULL,
    created_at       timestamptz NOT NULL,
    read_at          timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC);
