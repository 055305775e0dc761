-- A household's devices by household_id: every householder request (GET /households/me,
-- its history, diary and report) starts there. Without it each one scans the whole
-- registry: ~2 ms of database time per request at 20,000 devices (`cityops bench api`).

CREATE INDEX devices_household_idx ON devices (household_id) WHERE household_id IS NOT NULL;
