-- The duty officer's part of the gritting decision log (issue 17; rules/gritting_log.py,
-- docs/gritting.md "The decision log"): every acknowledgement or override of a run's route
-- decision, why, and by whom. With the runs' inputs and decisions and the crews' jobs it
-- is the record a council shows to defend its winter service (Highways Act 1980 s.41(1A)).
--
-- Append-only. The code only ever INSERTs here; a correction is a new row (a later
-- override). A trigger refuses UPDATE, DELETE and TRUNCATE, so the record cannot be
-- rewritten afterwards, and the rows reference their route decision without a cascade,
-- so a run the officer acted on cannot be deleted either.

CREATE TABLE gritting_decision_log (
    entry_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint NOT NULL,
    route_id        text NOT NULL,
    action          text NOT NULL CHECK (action IN ('acknowledge', 'override')),
    -- the decision in force when the officer acted: the run's, or an earlier override's
    decision_before text NOT NULL CHECK (decision_before IN ('send', 'not_needed', 'unknown')),
    -- an override's decision (NULL for an acknowledgement)
    decision        text CHECK (decision IN ('send', 'not_needed')),
    reason          text CHECK (btrim(reason) <> '' AND length(reason) <= 2000),
    officer         text NOT NULL CHECK (btrim(officer) <> '' AND length(officer) <= 200),
    user_id         text,            -- the signed-in user (API); NULL from the CLI. No foreign key:
                                     -- the officer's name above is the record, whatever becomes of the account
    at              timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (run_id, route_id) REFERENCES gritting_route_decisions (run_id, route_id),
    CHECK ((action = 'override') = (decision IS NOT NULL)),
    CHECK (decision IS DISTINCT FROM decision_before),
    -- an override needs a reason; so does acknowledging "unknown" (what was decided instead, and why)
    CHECK (reason IS NOT NULL OR (action = 'acknowledge' AND decision_before <> 'unknown'))
);
CREATE INDEX gritting_decision_log_route_idx ON gritting_decision_log (run_id, route_id, entry_id);

-- the log reads runs by period
CREATE INDEX gritting_runs_as_of_idx ON gritting_runs (as_of);

CREATE FUNCTION gritting_decision_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gritting_decision_log is append-only: % refused', TG_OP
        USING HINT = 'record a correction as a new acknowledgement or override (cityops roads ack)';
END
$$;

CREATE TRIGGER gritting_decision_log_append_only BEFORE UPDATE OR DELETE ON gritting_decision_log
    FOR EACH ROW EXECUTE FUNCTION gritting_decision_log_refuse_change();
CREATE TRIGGER gritting_decision_log_no_truncate BEFORE TRUNCATE ON gritting_decision_log
    FOR EACH STATEMENT EXECUTE FUNCTION gritting_decision_log_refuse_change();
