-- syncq 0.1.0 -> 0.2.0: ALTER EXTENSION syncq UPDATE TO '0.2.0'.
-- Every schema change of 0.2.0 is here, in the order it was made; the test
-- tests/integration/pg_upgrade_path.sh checks that 0.1.0 + this script
-- equals a fresh CREATE EXTENSION syncq.
\echo Use "ALTER EXTENSION syncq UPDATE TO '0.2.0'" to load this file. \quit

-- The capture functions return the same as in the SQLite extension:
-- sync_track() the priority, sync_untrack() whether the table was tracked,
-- sync_trigger() true.  A return type cannot be changed in place.
DROP FUNCTION sync_track(regclass, text);
CREATE FUNCTION sync_track(tbl regclass, priority text DEFAULT 'immediate') RETURNS text
	AS 'MODULE_PATHNAME', 'sync_track'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_track(regclass, text) IS 'capture every change of a table (priority immediate or batched); returns the priority';

DROP FUNCTION sync_untrack(regclass);
CREATE FUNCTION sync_untrack(tbl regclass) RETURNS boolean
	AS 'MODULE_PATHNAME', 'sync_untrack'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_untrack(regclass) IS 'stop capturing a table; queued rows stay; false if it was not tracked';

DROP FUNCTION sync_trigger();
CREATE FUNCTION sync_trigger() RETURNS boolean
	AS 'MODULE_PATHNAME', 'sync_trigger'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_trigger() IS 'ask for a sync now (NOTIFY sync_queue, ''request'')';
