-- Open damp statistics as fixed-period snapshots (issue 18, docs/api.md "Open data"): each
-- calendar week is computed once after it ends, through rules.disclosure, and served from
-- here; a published snapshot never changes (UPDATE refused; DELETE allowed, to withdraw one).
-- Plain tables on both back ends.

CREATE TABLE open_damp_periods (
    period_start timestamptz PRIMARY KEY,
    period_end   timestamptz NOT NULL CHECK (period_end > period_start),
    computed_at  timestamptz NOT NULL DEFAULT now(),
    policy       jsonb NOT NULL            -- the disclosure rules' parameters it was made with
);

-- the rows exactly as published, one per area
CREATE TABLE open_damp_areas (
    period_start timestamptz NOT NULL REFERENCES open_damp_periods ON DELETE CASCADE,
    area         text NOT NULL,
    release      jsonb NOT NULL,
    PRIMARY KEY (period_start, area)
);

-- private: the households each area counted, so that the next period can tell how many
-- joined or left (rules.disclosure.release_members). Never served.
CREATE TABLE open_damp_members (
    period_start timestamptz NOT NULL REFERENCES open_damp_periods ON DELETE CASCADE,
    area         text NOT NULL,
    household_id text NOT NULL,
    PRIMARY KEY (period_start, area, household_id)
);

CREATE FUNCTION open_damp_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is a published snapshot: UPDATE refused', TG_TABLE_NAME
        USING HINT = 'a snapshot never changes; delete the period to withdraw it';
END
$$;

CREATE TRIGGER open_damp_periods_fixed BEFORE UPDATE ON open_damp_periods
    FOR EACH ROW EXECUTE FUNCTION open_damp_refuse_update();
CREATE TRIGGER open_damp_areas_fixed BEFORE UPDATE ON open_damp_areas
    FOR EACH ROW EXECUTE FUNCTION open_damp_refuse_update();
CREATE TRIGGER open_damp_members_fixed BEFORE UPDATE ON open_damp_members
    FOR EACH ROW EXECUTE FUNCTION open_damp_refuse_update();
