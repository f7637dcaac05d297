-- syncq 0.1.0, as released (tag v0.1.0). Released SQL never changes: later versions go in sql/src and an upgrade script.
\echo Use "CREATE EXTENSION syncq" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Time: the same business date in PostgreSQL and SQLite for every instant.
--
-- Every function takes an instant.  A timestamptz is one; a timestamp without
-- time zone is read as UTC (never through the session's TimeZone), which is
-- why the one-argument forms can be IMMUTABLE and back an index.
-- ---------------------------------------------------------------------------

CREATE FUNCTION eastern_date(timestamptz) RETURNS date
	AS 'MODULE_PATHNAME', 'eastern_date'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION eastern_date(timestamp) RETURNS date
	AS 'MODULE_PATHNAME', 'eastern_date'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eastern_date(timestamptz) IS 'America/New_York calendar date of an instant';
COMMENT ON FUNCTION eastern_date(timestamp) IS 'America/New_York calendar date of an instant given as UTC';

CREATE FUNCTION eastern_date() RETURNS date
	AS 'MODULE_PATHNAME', 'eastern_date_today'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION eastern_date() IS 'today''s date in America/New_York (as of transaction start)';

CREATE FUNCTION eastern_now() RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'eastern_now'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION eastern_now() IS 'the current instant (transaction start); show it in Eastern time with utc_to_eastern()';

CREATE FUNCTION utc_to_eastern(timestamptz) RETURNS timestamp
	AS 'MODULE_PATHNAME', 'utc_to_eastern'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION utc_to_eastern(timestamp) RETURNS timestamp
	AS 'MODULE_PATHNAME', 'utc_to_eastern'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION utc_to_eastern(timestamptz) IS 'America/New_York wall time of an instant';
COMMENT ON FUNCTION utc_to_eastern(timestamp) IS 'America/New_York wall time of an instant given as UTC';

CREATE FUNCTION zone_date(timestamptz, text) RETURNS date
	AS 'MODULE_PATHNAME', 'zone_date'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION zone_date(timestamp, text) RETURNS date
	AS 'MODULE_PATHNAME', 'zone_date'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION zone_date(timestamptz, text) IS 'calendar date of an instant in an IANA time zone';
COMMENT ON FUNCTION zone_date(timestamp, text) IS 'calendar date of an instant given as UTC in an IANA time zone';

CREATE FUNCTION zone_time(timestamptz, text) RETURNS timestamp
	AS 'MODULE_PATHNAME', 'zone_time'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION zone_time(timestamp, text) RETURNS timestamp
	AS 'MODULE_PATHNAME', 'zone_time'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION zone_time(timestamptz, text) IS 'wall time of an instant in an IANA time zone';
COMMENT ON FUNCTION zone_time(timestamp, text) IS 'wall time of an instant given as UTC in an IANA time zone';

-- ---------------------------------------------------------------------------
-- Capture: every change of a tracked table becomes a row of sync_queue.
--
-- The tables below belong to the extension.  Those that hold this
-- database's own data (the queue, the tracked tables, the node id) are
-- marked with pg_extension_config_dump, so pg_dump saves their rows.
-- Cursors, conflicts and errors will get tables of their own.
-- ---------------------------------------------------------------------------

-- One row per captured change; docs/queue.md fixes the columns.  Rows are
-- written by the C trigger directly (see docs/pg_capture.md), so the app's
-- role needs no privilege on this table.
CREATE TABLE sync_queue (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	txid         xid8 NOT NULL,
	table_schema text NOT NULL,
	table_name   text NOT NULL,
	op           text NOT NULL CHECK (op IN ('I', 'U', 'D')),
	pk           json NOT NULL,
	row_data     json,
	changed_at   timestamptz NOT NULL,
	origin       uuid NOT NULL,
	priority     text NOT NULL CHECK (priority IN ('immediate', 'batched')),
	CHECK ((op = 'D') = (row_data IS NULL))
) USING heap;
COMMENT ON TABLE sync_queue IS 'one row per captured change, in capture order (seq)';
SELECT pg_catalog.pg_extension_config_dump('sync_queue', '');
-- The sequence too: a restored queue must go on from where it was, never
-- handing out a seq twice.
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('@extschema@.sync_queue', 'seq')::pg_catalog.regclass, '');

-- The tracked tables.  table_schema and table_name follow renames (see the
-- event trigger below); relid is what capture goes by.
CREATE TABLE sync_tables (
	relid        regclass PRIMARY KEY,
	table_schema text NOT NULL,
	table_name   text NOT NULL,
	priority     text NOT NULL CHECK (priority IN ('immediate', 'batched')),
	tracked_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE sync_tables IS 'tables whose changes syncq captures, with their priority';
SELECT pg_catalog.pg_extension_config_dump('sync_tables', '');
GRANT SELECT ON sync_tables TO PUBLIC;

-- This node's identity: one row, made on first use by sync_node_id() (never
-- by this script, so a restored dump keeps the node id it had).
CREATE TABLE sync_node (
	node_id      uuid PRIMARY KEY,
	created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX sync_node_single_row ON sync_node ((true));
COMMENT ON TABLE sync_node IS 'this database''s node id (one row, made on first use)';
SELECT pg_catalog.pg_extension_config_dump('sync_node', '');

-- The trigger functions.  sync_track() installs them; nobody else may.
CREATE FUNCTION syncq_capture() RETURNS trigger
	AS 'MODULE_PATHNAME', 'syncq_capture'
	LANGUAGE C;
COMMENT ON FUNCTION syncq_capture() IS 'capture trigger: queues each row change of a tracked table';
CREATE FUNCTION syncq_truncate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'syncq_truncate'
	LANGUAGE C;
COMMENT ON FUNCTION syncq_truncate() IS 'refuses TRUNCATE of a tracked table while capture is on';
REVOKE ALL ON FUNCTION syncq_capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION syncq_truncate() FROM PUBLIC;

CREATE FUNCTION sync_track(tbl regclass, priority text DEFAULT 'immediate') RETURNS void
	AS 'MODULE_PATHNAME', 'sync_track'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_track(regclass, text) IS 'capture every change of a table (priority immediate or batched)';

CREATE FUNCTION sync_untrack(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'sync_untrack'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_untrack(regclass) IS 'stop capturing a table; queued rows stay';

CREATE FUNCTION sync_enqueue(tbl regclass, op text, pk jsonb, "row" jsonb,
							 immediate boolean DEFAULT true) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sync_enqueue'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_enqueue(regclass, text, jsonb, jsonb, boolean) IS 'queue one change of a tracked table by hand; returns its seq';

CREATE FUNCTION sync_trigger() RETURNS void
	AS 'MODULE_PATHNAME', 'sync_trigger'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_trigger() IS 'ask for a sync now (NOTIFY sync_queue, ''request'')';

CREATE FUNCTION sync_node_id() RETURNS uuid
	AS 'MODULE_PATHNAME', 'sync_node_id'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_node_id() IS 'this database''s node id, made on first use';

CREATE FUNCTION is_online_server() RETURNS boolean
	AS 'SELECT true'
	LANGUAGE sql IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION is_online_server() IS 'true on the PostgreSQL hub (false on a SQLite client)';

-- Keep sync_tables true to the catalog: forget a tracked table when it is
-- dropped, follow a rename or a new schema, and refuse an ALTER TABLE that
-- takes a tracked table's primary key away (capture could not name its
-- rows any more).
CREATE FUNCTION syncq_watch_ddl() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lost name;
BEGIN
	IF TG_EVENT = 'sql_drop' THEN
		DELETE FROM @extschema@.sync_tables t
		 USING pg_event_trigger_dropped_objects() d
		 WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
		   AND d.objid = t.relid::oid;
		RETURN;
	END IF;

	UPDATE @extschema@.sync_tables t
	   SET table_schema = n.nspname, table_name = c.relname
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = t.relid::oid
	   AND (t.table_schema, t.table_name) IS DISTINCT FROM (n.nspname, c.relname);

	SELECT c.relname INTO lost
	  FROM @extschema@.sync_tables t JOIN pg_class c ON c.oid = t.relid::oid
	 WHERE t.relid::oid IN (SELECT objid FROM pg_event_trigger_ddl_commands()
							WHERE classid = 'pg_class'::regclass)
	   AND NOT EXISTS (SELECT FROM pg_index i
					   WHERE i.indrelid = t.relid::oid AND i.indisprimary)
	 LIMIT 1;
	IF lost IS NOT NULL THEN
		RAISE EXCEPTION 'table "%" is tracked by syncq and needs a primary key', lost
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'syncq finds a row on the other nodes by its primary key.',
				  HINT = 'Drop and add the primary key in one ALTER TABLE, or stop tracking the table with sync_untrack() first.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION syncq_watch_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER syncq_watch_drop ON sql_drop
	EXECUTE FUNCTION syncq_watch_ddl();
CREATE EVENT TRIGGER syncq_watch_alter ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION syncq_watch_ddl();

-- ---------------------------------------------------------------------------
-- Replication state kept on the hub (docs/replication.md). syncqd reads and
-- writes these; nothing here is for the app.
-- ---------------------------------------------------------------------------

-- Downloads find a client's changes by transaction visibility (txid against
-- the client's snapshot position); a BRIN index keeps that cheap on a long
-- queue without adding much per-row cost to capture. xid8 has no BRIN
-- operator class, so the index is on its 64-bit value, and queries use
-- sync_xid_value() on both sides.
CREATE FUNCTION sync_xid_value(xid8) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sync_xid_value'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sync_xid_value(xid8) IS 'syncq internal: the 64-bit value of a full transaction id';
CREATE INDEX sync_queue_txid_brin ON sync_queue USING brin (sync_xid_value(txid));

-- One row per client node: how far its uploads went, and where its
-- downloads stand.
CREATE TABLE sync_clients (
	node_id       uuid PRIMARY KEY,
	up_seq        bigint NOT NULL DEFAULT 0,
	up_digest     text NOT NULL DEFAULT '0',
	down_snapshot pg_snapshot,
	first_seen    timestamptz NOT NULL DEFAULT now(),
	last_seen     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync_clients IS 'syncq: per client node, the upload position (seq, digest) and the last download position';

-- The version of each row's current state that syncqd knows of:
-- microseconds since 1970 of changed_at, then the origin node.
CREATE TABLE sync_versions (
	-- pk is the key as compact JSON text (docs/queue.md), the same spelling
	-- from the capture trigger and from syncqd
	table_name text NOT NULL,
	pk         text NOT NULL,
	ver_us     bigint NOT NULL,
	ver_origin uuid NOT NULL,
	deleted    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (table_name, pk)
);
COMMENT ON TABLE sync_versions IS 'syncq: the version (changed_at, origin) of each synced row''s current state';

-- Every change overruled by a later one (last writer wins).
CREATE TABLE sync_conflicts (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	detected_at      timestamptz NOT NULL DEFAULT now(),
	table_name       text NOT NULL,
	pk               json NOT NULL,
	loser_op         text NOT NULL,
	loser_row        json,
	loser_changed_at timestamptz NOT NULL,
	loser_origin     uuid NOT NULL,
	winner_changed_at timestamptz NOT NULL,
	winner_origin    uuid NOT NULL
);
COMMENT ON TABLE sync_conflicts IS 'syncq: changes overruled by a later change to the same row';

-- Hub-wide replication state: how far the hub's own changes have been folded
-- into sync_versions, and below which position the queue was pruned.
CREATE TABLE sync_hub_state (
	singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	fold_snapshot pg_snapshot,
	horizon_xmin  xid8,
	retention     interval NOT NULL DEFAULT '30 days',
	pruned_at     timestamptz
);
INSERT INTO sync_hub_state DEFAULT VALUES;

-- Which `syncqd serve` user a client node id belongs to: bound on the node's
-- first request over HTTP, so that no other user can act for it
-- (docs/http.md). Users of the admin credentials are not bound.
CREATE TABLE sync_http_nodes (
	node_id   uuid PRIMARY KEY,
	http_user text NOT NULL,
	bound_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync_http_nodes IS 'syncq: the syncqd serve user each client node id belongs to';

SELECT pg_catalog.pg_extension_config_dump('sync_clients', '');
SELECT pg_catalog.pg_extension_config_dump('sync_http_nodes', '');
SELECT pg_catalog.pg_extension_config_dump('sync_versions', '');
SELECT pg_catalog.pg_extension_config_dump('sync_conflicts', '');

-- Fold the hub's own committed changes (origin = this node) that are not yet
-- in sync_versions into it. Called by syncqd at the start of every upload
-- transaction, under the apply lock, so uploaded changes are compared with
-- them. Idempotent: a version only ever grows.
CREATE FUNCTION sync_fold_local() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	prev pg_snapshot;
	cur  pg_snapshot := pg_current_snapshot();
	me   uuid := sync_node_id();
	n    bigint;
BEGIN
	SELECT fold_snapshot INTO prev FROM sync_hub_state FOR UPDATE;
	INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)
	SELECT DISTINCT ON (q.table_name, q.pk::text)
	       q.table_name, q.pk::text,
	       (extract(epoch FROM q.changed_at) * 1000000)::bigint, q.origin, q.op = 'D'
	FROM sync_queue q
	WHERE q.origin = me
	  AND pg_visible_in_snapshot(q.txid, cur)
	  AND (prev IS NULL OR (sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
	                        AND NOT pg_visible_in_snapshot(q.txid, prev)))
	ORDER BY q.table_name, q.pk::text, q.changed_at DESC, q.seq DESC
	ON CONFLICT (table_name, pk) DO UPDATE
	   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted
	 WHERE (v.ver_us, v.ver_origin::text) <= (EXCLUDED.ver_us, EXCLUDED.ver_origin::text);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state SET fold_snapshot = cur;
	RETURN n;
END
$$;
COMMENT ON FUNCTION sync_fold_local() IS 'syncq internal: fold the hub''s own changes into sync_versions';
REVOKE ALL ON FUNCTION sync_fold_local() FROM PUBLIC;

-- Delete the queue rows every client that synced within the retention
-- window has already received, and remember the horizon: a client whose
-- position lies below it (it was away longer than the window) gets a first
-- sync again instead of silently missing what was deleted. syncqd calls it
-- now and then; it may also be run by hand or from a scheduler.
CREATE FUNCTION sync_prune() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	keep   interval;
	needed xid8;
	n      bigint;
BEGIN
	PERFORM sync_fold_local();
	SELECT retention INTO keep FROM sync_hub_state FOR UPDATE;
	SELECT min(pg_snapshot_xmin(c.down_snapshot)) INTO needed
	  FROM sync_clients c
	 WHERE c.down_snapshot IS NOT NULL AND c.last_seen > now() - keep;
	-- no active client: keep what the hub's own snapshot could still miss
	needed := coalesce(needed, pg_snapshot_xmin(pg_current_snapshot()));
	DELETE FROM sync_queue WHERE sync_xid_value(txid) < sync_xid_value(needed);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state
	   SET horizon_xmin = greatest(horizon_xmin, needed), pruned_at = now();
	RETURN n;
END
$$;
COMMENT ON FUNCTION sync_prune() IS 'delete queue rows every recently active client has received (sync_hub_state.retention)';
REVOKE ALL ON FUNCTION sync_prune() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Poison changes (docs/daemon.md): a client change the hub cannot apply (a
-- constraint it violates, a column or table the hub does not have, a value
-- its type refuses) is set aside here by syncqd, in the same transaction
-- that moves the client's upload position past it, so the changes behind it
-- still go through. syncqd retries the rows of a client on its later syncs;
-- once one applies (the cause was fixed) or is overruled by a later change
-- of its row, it is deleted. Deleting a row by hand drops the change.
-- ---------------------------------------------------------------------------

CREATE TABLE sync_errors (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	node_id      uuid NOT NULL,           -- the client that uploaded it
	seq          bigint NOT NULL,         -- its seq in that client's queue
	table_name   text NOT NULL,
	op           text NOT NULL CHECK (op IN ('I', 'U', 'D')),
	pk           json NOT NULL,
	row_data     json,
	changed_at   timestamptz NOT NULL,
	origin       uuid NOT NULL,
	priority     text NOT NULL CHECK (priority IN ('immediate', 'batched')),
	error        text NOT NULL,           -- why it was refused, the last time
	sqlstate     text,                    -- the error's SQLSTATE, when the hub raised it
	first_failed timestamptz NOT NULL DEFAULT now(),
	last_failed  timestamptz NOT NULL DEFAULT now(),
	attempts     integer NOT NULL DEFAULT 1,
	UNIQUE (node_id, seq)
);
COMMENT ON TABLE sync_errors IS 'syncq: uploaded changes the hub could not apply, kept with the reason and retried by syncqd';
SELECT pg_catalog.pg_extension_config_dump('sync_errors', '');
