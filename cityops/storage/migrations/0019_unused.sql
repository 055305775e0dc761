-- Left unused: numbers were reserved for changes landed in parallel (issue 18), and these two
-- needed no schema change. Nothing to apply; kept so that versions run without gaps.
SELECT 1;  -- nothing to change
