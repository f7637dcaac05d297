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

-- Schema changes are followed (issue 14): the columns of each tracked table
-- as last seen, and the columns tracked tables dropped or renamed, kept by
-- the event trigger; syncqd applies a change that still carries a column
-- gone without it (or under its new name).
-- The columns of each tracked table as syncq last saw them: attnum stays
-- through RENAME COLUMN, so syncq_watch_ddl() tells a renamed column
-- from a new one.  Kept by syncq_columns_follow() when a table is tracked
-- and by syncq_watch_ddl() after every ALTER TABLE.
CREATE TABLE sync_columns (
	relid        regclass NOT NULL,
	attnum       int2 NOT NULL,
	attname      name NOT NULL,
	PRIMARY KEY (relid, attnum)
);
COMMENT ON TABLE sync_columns IS 'syncq internal: the columns of each tracked table as last seen';
SELECT pg_catalog.pg_extension_config_dump('sync_columns', '');

-- The columns a tracked table had and has no more: dropped (renamed_to
-- NULL) or renamed.  syncqd applies a client change that still carries one
-- without it (or under its new name) instead of setting it aside; a column
-- the table never had still sets the change aside until it exists.
CREATE TABLE sync_columns_gone (
	table_schema text NOT NULL,
	table_name   text NOT NULL,
	column_name  text NOT NULL,
	renamed_to   text,
	gone_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (table_schema, table_name, column_name)
);
COMMENT ON TABLE sync_columns_gone IS 'columns tracked tables dropped or renamed (syncqd follows them)';
SELECT pg_catalog.pg_extension_config_dump('sync_columns_gone', '');
GRANT SELECT ON sync_columns_gone TO PUBLIC;

-- The tracked tables renamed: a change that still names a table by a name
-- it had (made on a node that had not renamed it yet) applies to the table
-- under its name now, and is not set aside.  Kept by syncq_watch_ddl().
CREATE TABLE sync_tables_renamed (
	table_name   text PRIMARY KEY,	-- a name a tracked table had
	renamed_to   text NOT NULL,		-- its name now (a chain points at the last)
	renamed_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE sync_tables_renamed IS 'tracked tables renamed (syncqd follows them)';
SELECT pg_catalog.pg_extension_config_dump('sync_tables_renamed', '');
GRANT SELECT ON sync_tables_renamed TO PUBLIC;

-- A table tracked (again): remember its columns as they are now; a table
-- no longer tracked: forget them.
CREATE FUNCTION syncq_columns_follow() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		DELETE FROM @extschema@.sync_columns WHERE relid = OLD.relid;
		RETURN NULL;
	END IF;
	INSERT INTO @extschema@.sync_columns (relid, attnum, attname)
	SELECT NEW.relid, a.attnum, a.attname
	  FROM pg_attribute a
	 WHERE a.attrelid = NEW.relid::oid AND a.attnum > 0 AND NOT a.attisdropped
	ON CONFLICT (relid, attnum) DO UPDATE SET attname = excluded.attname;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION syncq_columns_follow() FROM PUBLIC;
CREATE TRIGGER syncq_columns_follow AFTER INSERT OR DELETE ON sync_tables
	FOR EACH ROW EXECUTE FUNCTION syncq_columns_follow();
INSERT INTO sync_columns (relid, attnum, attname)
SELECT t.relid, a.attnum, a.attname
  FROM sync_tables t
  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.relid::oid AND a.attnum > 0
 WHERE NOT a.attisdropped;

-- Versions are a hybrid logical clock; syncqd applies clients' changes with
-- capture on, and the hub answers a client with corrections
-- (docs/replication.md). Corrections for one client in the queue:
ALTER TABLE sync_queue
	ADD COLUMN for_node uuid,
	ADD COLUMN for_seq bigint,
	ADD COLUMN replaces timestamptz,
	ADD CONSTRAINT sync_queue_correction_check
		CHECK (for_node IS NOT NULL OR (for_seq IS NULL AND replaces IS NULL)),
	-- a key and a row are JSON objects: a row written by hand that is not
	-- would stop every client's download (an upgrade of a queue holding
	-- such a row stops here, naming the constraint: delete the row first)
	ADD CONSTRAINT sync_queue_json_check
		CHECK (pg_catalog.json_typeof(pk) = 'object'
			   AND (row_data IS NULL OR pg_catalog.json_typeof(row_data) = 'object'));

-- How far ahead of the hub's clock a client's version may be. (Added
-- without a default first, so that no "missing value" of the column's
-- default stays behind in pg_attribute, unlike in a fresh install.)
ALTER TABLE sync_hub_state ADD COLUMN max_offset interval;
UPDATE sync_hub_state SET max_offset = '5 minutes';
ALTER TABLE sync_hub_state
	ALTER COLUMN max_offset SET DEFAULT '5 minutes',
	ALTER COLUMN max_offset SET NOT NULL,
	ADD CONSTRAINT sync_hub_state_max_offset_check CHECK (max_offset >= '0');

-- The hub's clock.
-- One row per slot: an upload raises the row of its connection's slot
-- (pg_backend_pid() % 16), so that uploads applied side by side do not wait
-- for each other's row; the clock is the greatest of them.
CREATE TABLE sync_clock (
	slot smallint PRIMARY KEY CHECK (slot >= 0 AND slot < 16),
	hlc  timestamptz NOT NULL
) USING heap;
INSERT INTO sync_clock (slot, hlc) SELECT s, 'epoch' FROM generate_series(0, 15) s;
COMMENT ON TABLE sync_clock IS 'syncq: the greatest version applied on the hub (its hybrid logical clock)';


-- Keep sync_tables true to the catalog: forget a tracked table when it is
-- dropped, follow a rename or a new schema, and refuse an ALTER TABLE that
-- takes a tracked table's primary key away (capture could not name its
-- rows any more).  Keep sync_columns_gone: a column dropped from a tracked
-- table (sql_drop names it), a column renamed (sync_columns held its old
-- name), a column that is back again.  Keep sync_tables_renamed: the
-- names a tracked table had.
CREATE OR REPLACE FUNCTION syncq_watch_ddl() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lost name;
	twins text;
	cash record;
BEGIN
	IF TG_EVENT = 'sql_drop' THEN
		INSERT INTO @extschema@.sync_columns_gone AS g
			   (table_schema, table_name, column_name, renamed_to)
		SELECT t.table_schema, t.table_name, d.address_names[3], NULL
		  FROM pg_event_trigger_dropped_objects() d
		  JOIN @extschema@.sync_tables t ON t.relid::oid = d.objid
		 WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0
		   AND d.object_type = 'table column'
		ON CONFLICT (table_schema, table_name, column_name)
		DO UPDATE SET renamed_to = NULL, gone_at = pg_catalog.now();
		DELETE FROM @extschema@.sync_columns c
		 USING pg_event_trigger_dropped_objects() d
		 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.relid::oid
		   AND d.objsubid IN (0, c.attnum);
		DELETE FROM @extschema@.sync_tables t
		 USING pg_event_trigger_dropped_objects() d
		 WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
		   AND d.objid = t.relid::oid;
		RETURN;
	END IF;

	UPDATE @extschema@.sync_columns_gone g
	   SET table_schema = n.nspname, table_name = c.relname
	  FROM @extschema@.sync_tables t
	  JOIN pg_class c ON c.oid = t.relid::oid
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE (g.table_schema, g.table_name) = (t.table_schema, t.table_name)
	   AND (t.table_schema, t.table_name) IS DISTINCT FROM (n.nspname, c.relname);
	-- a table renamed: what still names it by an old name follows it
	-- (sync_tables_renamed; a chain points at the last name), and so do
	-- its rows' versions (leftovers of a former table of the new name go)
	UPDATE @extschema@.sync_tables_renamed r
	   SET renamed_to = c.relname, renamed_at = pg_catalog.now()
	  FROM @extschema@.sync_tables t JOIN pg_class c ON c.oid = t.relid::oid
	 WHERE t.table_name <> c.relname AND r.renamed_to = t.table_name;
	INSERT INTO @extschema@.sync_tables_renamed AS r (table_name, renamed_to)
	SELECT t.table_name, c.relname
	  FROM @extschema@.sync_tables t JOIN pg_class c ON c.oid = t.relid::oid
	 WHERE t.table_name <> c.relname
	ON CONFLICT (table_name)
	DO UPDATE SET renamed_to = excluded.renamed_to, renamed_at = pg_catalog.now();
	DELETE FROM @extschema@.sync_versions v
	 USING @extschema@.sync_tables t JOIN pg_class c ON c.oid = t.relid::oid
	 WHERE t.table_name <> c.relname AND v.table_name = c.relname;
	UPDATE @extschema@.sync_versions v
	   SET table_name = c.relname
	  FROM @extschema@.sync_tables t JOIN pg_class c ON c.oid = t.relid::oid
	 WHERE t.table_name <> c.relname AND v.table_name = t.table_name;
	UPDATE @extschema@.sync_tables t
	   SET table_schema = n.nspname, table_name = c.relname
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = t.relid::oid
	   AND (t.table_schema, t.table_name) IS DISTINCT FROM (n.nspname, c.relname);
	-- a name a tracked table has now is no old name
	DELETE FROM @extschema@.sync_tables_renamed r
	 USING @extschema@.sync_tables t
	 WHERE r.table_name = t.table_name;

	-- renamed columns: a chain of renames points at the last name
	UPDATE @extschema@.sync_columns_gone g
	   SET renamed_to = a.attname, gone_at = pg_catalog.now()
	  FROM @extschema@.sync_columns s
	  JOIN @extschema@.sync_tables t ON t.relid = s.relid
	  JOIN pg_attribute a ON a.attrelid = s.relid::oid AND a.attnum = s.attnum
	 WHERE NOT a.attisdropped AND a.attname <> s.attname
	   AND (g.table_schema, g.table_name) = (t.table_schema, t.table_name)
	   AND g.renamed_to = s.attname;
	INSERT INTO @extschema@.sync_columns_gone AS g
		   (table_schema, table_name, column_name, renamed_to)
	SELECT t.table_schema, t.table_name, s.attname, a.attname
	  FROM @extschema@.sync_columns s
	  JOIN @extschema@.sync_tables t ON t.relid = s.relid
	  JOIN pg_attribute a ON a.attrelid = s.relid::oid AND a.attnum = s.attnum
	 WHERE NOT a.attisdropped AND a.attname <> s.attname
	ON CONFLICT (table_schema, table_name, column_name)
	DO UPDATE SET renamed_to = excluded.renamed_to, gone_at = pg_catalog.now();
	-- a column that is there (again) has not gone
	DELETE FROM @extschema@.sync_columns_gone g
	 USING @extschema@.sync_tables t
	  JOIN pg_attribute a ON a.attrelid = t.relid::oid AND a.attnum > 0
	 WHERE NOT a.attisdropped AND (g.table_schema, g.table_name) = (t.table_schema, t.table_name)
	   AND g.column_name = a.attname;
	-- the columns as they are now
	DELETE FROM @extschema@.sync_columns s
	 WHERE NOT EXISTS (SELECT FROM pg_attribute a
					   WHERE a.attrelid = s.relid::oid AND a.attnum = s.attnum
						 AND NOT a.attisdropped AND a.attname = s.attname);
	INSERT INTO @extschema@.sync_columns (relid, attnum, attname)
	SELECT t.relid, a.attnum, a.attname
	  FROM @extschema@.sync_tables t
	  JOIN pg_attribute a ON a.attrelid = t.relid::oid AND a.attnum > 0
	 WHERE NOT a.attisdropped
	ON CONFLICT (relid, attnum) DO NOTHING;

	-- a client finds a table by its name alone, ignoring case
	SELECT format('%I.%I and %I.%I', a.table_schema, a.table_name, b.table_schema, b.table_name)
	  INTO twins
	  FROM @extschema@.sync_tables a JOIN @extschema@.sync_tables b
	    ON lower(a.table_name) = lower(b.table_name) AND a.relid::oid < b.relid::oid
	 LIMIT 1;
	IF twins IS NOT NULL THEN
		RAISE EXCEPTION 'tracked tables % would have the same name', twins
			USING ERRCODE = 'duplicate_object',
				  DETAIL = 'A client finds a table by its name alone, ignoring case, so it could not tell the two apart.',
				  HINT = 'Give the table another name, or stop tracking one of them with sync_untrack() first.';
	END IF;

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

	-- a column of money (through domains and arrays) added to a tracked
	-- table, or a column made money: refused as sync_track() refuses it
	SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ
	  INTO cash
	  FROM @extschema@.sync_tables t
	  JOIN pg_class c ON c.oid = t.relid::oid
	  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
	 WHERE t.relid::oid IN (SELECT objid FROM pg_event_trigger_ddl_commands()
							WHERE classid = 'pg_class'::regclass)
	   AND NOT a.attisdropped AND a.attgenerated = ''
	   AND 'money'::regtype IN (
			WITH RECURSIVE b(oid) AS (
				SELECT a.atttypid
				UNION
				SELECT CASE WHEN y.typtype = 'd' THEN y.typbasetype ELSE y.typelem END
				  FROM b JOIN pg_type y ON y.oid = b.oid
				 WHERE y.typtype = 'd' OR (y.typcategory = 'A' AND y.typelem <> 0))
			SELECT oid FROM b)
	 ORDER BY a.attnum
	 LIMIT 1;
	IF cash IS NOT NULL THEN
		RAISE EXCEPTION 'column "%" of table "%" has type %, which syncq cannot carry',
			cash.attname, cash.relname, cash.typ
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'The text of a money value follows lc_monetary, so another node may read it as another amount.',
				  HINT = 'Store amounts as numeric, or stop tracking the table with sync_untrack() first.';
	END IF;
END
$$;

-- For syncqd, which applies clients' changes with capture on (apply.c):
-- the keys of a client's changes as the hub stores them; what the next
-- statement applies; what the capture did with it; a row queued as the hub
-- holds it now (a correction for one client, or a change of the hub's own).
CREATE FUNCTION sync_normalize_keys(keys jsonb) RETURNS TABLE (i integer, pk text, error text)
	AS 'MODULE_PATHNAME', 'sync_normalize_keys'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_normalize_keys(jsonb) IS 'syncq internal: keys of changes as the hub stores them';
CREATE FUNCTION sync_apply_expect(changes jsonb) RETURNS boolean
	AS 'MODULE_PATHNAME', 'sync_apply_expect'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_apply_expect(jsonb) IS 'syncq internal: the changes the statement applies, with their versions';
CREATE FUNCTION sync_apply_report()
	RETURNS TABLE (n integer, seq bigint, t text, op text, pk text, row_data text,
				   ver bigint, origin uuid, what text)
	AS 'MODULE_PATHNAME', 'sync_apply_report'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_apply_report() IS 'syncq internal: what the capture did with the changes syncqd applied';
CREATE FUNCTION sync_queue_row(tbl regclass, pk jsonb, ver bigint, origin uuid,
							   for_node uuid, for_seq bigint, replaces bigint,
							   OUT queued_seq bigint, OUT queued_ver bigint, OUT queued_op text)
	AS 'MODULE_PATHNAME', 'sync_queue_row'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_queue_row(regclass, jsonb, bigint, uuid, uuid, bigint, bigint) IS 'syncq internal: queue a row as the hub holds it now';
REVOKE ALL ON FUNCTION sync_normalize_keys(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_apply_expect(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_apply_report() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_queue_row(regclass, jsonb, bigint, uuid, uuid, bigint, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION sync_fold_local() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
	prev pg_snapshot;
	cur  pg_snapshot;
	me   uuid := sync_node_id();
	own  xid8;
	n    bigint;
	r    record;
	made record;
BEGIN
	-- Nothing of the hub's own committed since the last fold: nothing to
	-- fold, and nothing written (no lock on sync_hub_state's row, which
	-- uploads side by side would take turns on, no transaction id, so no
	-- commit to flush). fold_snapshot stays: the hub's own changes it
	-- leaves out are still in progress, as after a fold now. The check
	-- reads sync_queue_origin_txid in its order from the snapshot's xmin:
	-- as an EXISTS, a plan that expected many rows of the hub's own to
	-- fold (after ANALYZE) or any snapshot (PL/pgSQL's kept plan) scanned
	-- the whole queue and found none, 130 ms an upload with 1,000,000 rows
	-- queued against 1.3 ms. Every query here is planned for its values
	-- (plan_cache_mode above): the loop's below test prev for NULL.
	SELECT fold_snapshot INTO prev FROM sync_hub_state;
	cur := pg_current_snapshot();
	IF prev IS NOT NULL THEN
		PERFORM FROM sync_queue q
		 WHERE q.origin = me AND q.for_node IS NULL
		   AND sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
		   AND NOT pg_visible_in_snapshot(q.txid, prev)
		   AND pg_visible_in_snapshot(q.txid, cur)
		 ORDER BY sync_xid_value(q.txid) LIMIT 1;
		IF NOT FOUND THEN
			RETURN 0;
		END IF;
	END IF;
	own := pg_current_xact_id();
	SELECT fold_snapshot INTO prev FROM sync_hub_state FOR UPDATE;
	-- after the lock: a fold that waited for another sees what that one did
	cur := pg_current_snapshot();
	FOR r IN
		WITH w AS (
			SELECT DISTINCT ON (q.table_name COLLATE "C", q.pk::text COLLATE "C")
			       q.table_schema, q.table_name, q.pk, q.seq, q.changed_at,
			       max(q.changed_at) OVER (PARTITION BY q.table_name, q.pk::text) AS top
			FROM sync_queue q
			WHERE q.origin = me AND q.for_node IS NULL AND q.txid <> own
			  AND pg_visible_in_snapshot(q.txid, cur)
			  AND (prev IS NULL OR (sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
			                        AND NOT pg_visible_in_snapshot(q.txid, prev)))
			ORDER BY q.table_name COLLATE "C", q.pk::text COLLATE "C", q.seq DESC)
		SELECT w.table_schema, w.table_name, w.pk, w.seq
		  FROM w LEFT JOIN sync_versions v ON v.table_name = w.table_name AND v.pk = w.pk::text
		 WHERE w.changed_at < w.top
		    OR ((extract(epoch FROM w.changed_at) * 1000000)::bigint, me::text)
		       < (v.ver_us, v.ver_origin::text)
	LOOP
		-- the row's version row locked first (a placeholder if it has none:
		-- an upload that holds it, or is inserting it, is waited for), then
		-- looked at again: a row written since (an upload whose change beat
		-- this one, or the hub again) is left alone, its version stands
		INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin)
		VALUES (r.table_name, r.pk::text, -1, '00000000-0000-0000-0000-000000000000')
		ON CONFLICT (table_name, pk) DO UPDATE SET ver_us = v.ver_us WHERE false;
		IF EXISTS (SELECT 1 FROM sync_queue q
		            WHERE q.table_name = r.table_name AND q.pk::text = r.pk::text
		              AND q.seq > r.seq AND q.for_node IS NULL
		              AND (prev IS NULL OR sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))))
		THEN
			DELETE FROM sync_versions
			 WHERE table_name = r.table_name AND pk = r.pk::text AND ver_us = -1;
			CONTINUE;
		END IF;
		made := sync_queue_row(format('%I.%I', r.table_schema, r.table_name)::regclass,
							   r.pk::jsonb, NULL, NULL, NULL, NULL, NULL);
		INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)
		VALUES (r.table_name, r.pk::text, made.queued_ver, me, made.queued_op = 'D')
		ON CONFLICT (table_name, pk) DO UPDATE
		   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted;
	END LOOP;
	INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)
	SELECT DISTINCT ON (q.table_name COLLATE "C", q.pk::text COLLATE "C")
	       q.table_name, q.pk::text,
	       (extract(epoch FROM q.changed_at) * 1000000)::bigint, q.origin, q.op = 'D'
	FROM sync_queue q
	WHERE q.origin = me AND q.for_node IS NULL AND q.txid <> own
	  AND pg_visible_in_snapshot(q.txid, cur)
	  AND (prev IS NULL OR (sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
	                        AND NOT pg_visible_in_snapshot(q.txid, prev)))
	ORDER BY q.table_name COLLATE "C", q.pk::text COLLATE "C", q.seq DESC
	ON CONFLICT (table_name, pk) DO UPDATE
	   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted
	 WHERE (v.ver_us, v.ver_origin::text) <= (EXCLUDED.ver_us, EXCLUDED.ver_origin::text);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state SET fold_snapshot = cur;
	RETURN n;
END
$$;

-- Was the upload this transaction applies overtaken (docs/replication.md)?
-- The number of rows it wrote that a hub transaction also wrote and that
-- the upload did not compare with (folded: the snapshot it read its first
-- versions in, with the hub's changes the fold before it had not seen;
-- hub/apply.c, versions_of): the upload may have overwritten that change.
-- (A later fold, another upload's, may have folded it since: the upload
-- did not see that either.) Planned for its values at every call, and
-- never as a nested loop: a plan PL/pgSQL kept from when the queue was
-- small scanned the queue once for every change of the hub's own since
-- the fold (an upload of 20,000 rows with 20,000 such changes: 59 s;
-- now 33 ms).
CREATE FUNCTION sync_overtaken(folded pg_snapshot) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT
SET plan_cache_mode = force_custom_plan SET enable_nestloop = off AS $$
BEGIN
	RETURN (
		WITH late AS (
			SELECT q.table_name, q.pk::text AS pk FROM sync_queue q
			 WHERE sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(folded))
			   AND NOT pg_visible_in_snapshot(q.txid, folded)
			   AND q.txid <> pg_current_xact_id()
			   AND q.origin = (SELECT sync_node_id()) AND q.for_node IS NULL)
		SELECT count(*) FROM late WHERE EXISTS (
			SELECT 1 FROM sync_queue m
			 WHERE m.txid = pg_current_xact_id()
			   AND m.table_name = late.table_name AND m.pk::text = late.pk));
END
$$;
COMMENT ON FUNCTION sync_overtaken(pg_snapshot) IS 'syncq internal: rows of this upload a hub transaction the fold did not see also wrote';
REVOKE ALL ON FUNCTION sync_overtaken(pg_snapshot) FROM PUBLIC;

-- Where a download of node's changes from position pos up to snapshot
-- target can start (hub/download.c, changes_floor): below the seq of every
-- queue row it is to read, and at most the greatest seq there is when it
-- has none. Those rows are found by transaction through sync_queue_txid,
-- never by a scan of the whole queue: until ANALYZE has seen the queue (a
-- queue that grew from empty faster than autovacuum followed), the
-- planner takes a condition on txid for a third of the rows, and a plan
-- for its values read all 300,000 at every sync, 100-190
-- ms (bench part 52). No parallel workers either: with 300,000 rows
-- queued, a parallel plan took 64-76 ms to find one row on a busy machine,
-- 0.02-0.13 ms without (EXPLAIN ANALYZE). min(seq + 0), not min(seq),
-- which could walk sync_queue_pkey instead.
CREATE FUNCTION sync_download_floor(pos pg_snapshot, node uuid, target pg_snapshot) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT
SET plan_cache_mode = force_custom_plan SET enable_seqscan = off
SET max_parallel_workers_per_gather = 0 AS $$
BEGIN
	RETURN coalesce(
		(SELECT min(q.seq + 0) - 1 FROM sync_queue q
		  WHERE q.txid >= pg_snapshot_xmin(pos)
		    AND NOT pg_visible_in_snapshot(q.txid, pos)
		    AND pg_visible_in_snapshot(q.txid, target)
		    AND CASE WHEN q.for_node IS NULL THEN q.origin <> node ELSE q.for_node = node END),
		(SELECT max(seq) FROM sync_queue),
		0);
END
$$;
COMMENT ON FUNCTION sync_download_floor(pg_snapshot, uuid, pg_snapshot) IS 'syncq internal: below the seq of every queue row a download is to read';
REVOKE ALL ON FUNCTION sync_download_floor(pg_snapshot, uuid, pg_snapshot) FROM PUBLIC;

-- A row as its capture writes it: what syncqd reads for a first sync, so
-- that the first sync and the changes after it spell every value alike.
CREATE FUNCTION sync_row_json(tbl regclass, r record) RETURNS json
	AS 'MODULE_PATHNAME', 'sync_row_json'
	LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION sync_row_json(regclass, record) IS 'a row of a table as its capture writes it (what a first sync sends)';

-- syncq_version(): the installed version, as in the SQLite extension and
-- syncqd --version.
CREATE FUNCTION syncq_version() RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	AS $$ SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'syncq' $$;
COMMENT ON FUNCTION syncq_version() IS 'the installed version of syncq (as syncqd --version)';

-- pg_dump keeps the hub's state and settings (sync_hub_state: retention,
-- the prune horizon) and the identity sequences of sync_conflicts and
-- sync_errors (a restored hub handed out their ids again).
CREATE FUNCTION sync_hub_state_replace() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	DELETE FROM sync_hub_state;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION sync_hub_state_replace() IS 'syncq internal: an insert into sync_hub_state replaces its one row (pg_restore)';
REVOKE ALL ON FUNCTION sync_hub_state_replace() FROM PUBLIC;
CREATE TRIGGER sync_hub_state_replace BEFORE INSERT ON sync_hub_state
	FOR EACH ROW EXECUTE FUNCTION sync_hub_state_replace();
SELECT pg_catalog.pg_extension_config_dump('sync_hub_state', '');
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('@extschema@.sync_conflicts', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('@extschema@.sync_errors', 'id')::pg_catalog.regclass, '');

-- Keys the hub assigns (issue 13): a client's new row whose integer key is
-- another record's on the hub gets a new key; kept until the client
-- acknowledges the upload.
CREATE TABLE sync_key_renames (
	node_id     uuid NOT NULL,
	seq         bigint NOT NULL,		-- the client's queue seq of the insert
	table_name  text NOT NULL,
	key_column  text NOT NULL,
	old_key     bigint NOT NULL,
	new_key     bigint NOT NULL,
	renamed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (node_id, seq)
);
COMMENT ON TABLE sync_key_renames IS 'syncq: client rows given a new key by the hub, kept until the client acknowledges the upload';
SELECT pg_catalog.pg_extension_config_dump('sync_key_renames', '');

-- A key policy per tracked table (issue 13): sync_track()'s third argument,
-- as in the SQLite extension. (The column is added without a default
-- first, as max_offset above.)
ALTER TABLE sync_tables ADD COLUMN keys text;
UPDATE sync_tables SET keys = 'auto';
ALTER TABLE sync_tables
	ALTER COLUMN keys SET DEFAULT 'auto',
	ALTER COLUMN keys SET NOT NULL,
	ADD CONSTRAINT sync_tables_keys_check CHECK (keys IN ('auto', 'hub', 'natural'));
COMMENT ON TABLE sync_tables IS 'tables whose changes syncq captures, with their priority and key policy';
DROP FUNCTION sync_track(regclass, text);
CREATE FUNCTION sync_track(tbl regclass, priority text DEFAULT 'immediate', keys text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'sync_track'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_track(regclass, text, text) IS 'capture every change of a table (priority immediate or batched; keys auto, hub or natural, NULL: as it was); returns the priority';

-- A tracked table rebuilt on the hub (issue 14): a table that takes the
-- name of a tracked table dropped earlier in the same transaction, by
-- ALTER TABLE ... RENAME TO or CREATE TABLE, is tracked in its place.
-- The tracked tables dropped, each with what its tracking was, for the
-- rest of the transaction that dropped it (txid): a table that takes its
-- name in that transaction (ALTER TABLE ... RENAME TO it, or CREATE TABLE
-- under it) is a rebuild and is tracked in its place (docs/migrating.md).
-- A row is only ever read by its own transaction: ROLLBACK takes it back,
-- and one left by a plain DROP that committed is inert (another txid)
-- until the name is dropped again.  Kept by syncq_follow_rebuild(); not
-- dumped.
CREATE TABLE sync_tables_dropped (
	table_schema text NOT NULL,
	table_name   text NOT NULL,
	txid         xid8 NOT NULL,		-- the transaction that dropped it
	priority     text NOT NULL,
	keys         text NOT NULL,
	tracked_at   timestamptz NOT NULL,
	column_names name[] NOT NULL,	-- its columns as last seen (sync_columns)
	made         oid,				-- a table created under the name that has no primary key yet
	PRIMARY KEY (table_schema, table_name)
);
COMMENT ON TABLE sync_tables_dropped IS 'syncq internal: tracked tables dropped, for the transaction that dropped them (a rebuild is tracked again)';

-- Follow a rebuild (docs/migrating.md): a table that takes the name of a
-- tracked table dropped earlier in the same transaction, by ALTER TABLE
-- ... RENAME TO or by CREATE TABLE, is tracked in its place with its
-- priority, key policy and tracked_at, and the columns the dropped table
-- had and it has not are gone, as after ALTER TABLE ... DROP COLUMN.  One
-- created under the name is tracked with 'copy': the rows its creating
-- transaction inserts are the dropped table's, copied, not changes
-- (capture.c).  One without a primary key is tracked by the ALTER TABLE
-- that gives it one in the same transaction.
-- Event triggers of one event fire in name order: syncq_rebuild_drop
-- reads sync_tables and sync_columns before syncq_watch_drop forgets the
-- dropped table (10_capture.sql).
CREATE FUNCTION syncq_follow_rebuild() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	heir record;
BEGIN
	IF TG_EVENT = 'sql_drop' THEN
		INSERT INTO @extschema@.sync_tables_dropped AS p
			   (table_schema, table_name, txid, priority, keys, tracked_at, column_names, made)
		SELECT t.table_schema, t.table_name, pg_current_xact_id(), t.priority, t.keys, t.tracked_at,
			   ARRAY(SELECT c.attname FROM @extschema@.sync_columns c
					  WHERE c.relid = t.relid ORDER BY c.attnum), NULL
		  FROM @extschema@.sync_tables t
		 WHERE t.relid::oid IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d
								WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0)
		ON CONFLICT (table_schema, table_name)
		DO UPDATE SET txid = excluded.txid, priority = excluded.priority, keys = excluded.keys,
					  tracked_at = excluded.tracked_at, column_names = excluded.column_names,
					  made = NULL;
		RETURN;
	END IF;

	FOR heir IN
		SELECT DISTINCT c.oid AS relid, n.nspname, c.relname, p.priority, p.keys, p.tracked_at,
			   p.column_names, p.made,
			   EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key
		  FROM pg_event_trigger_ddl_commands() e
		  JOIN pg_class c ON c.oid = e.objid
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN @extschema@.sync_tables_dropped p
			ON (p.table_schema, p.table_name) = (n.nspname::text, c.relname::text)
		 WHERE e.classid = 'pg_class'::regclass AND c.relkind = 'r'
		   AND p.txid = pg_current_xact_id_if_assigned()
		   AND NOT EXISTS (SELECT FROM @extschema@.sync_tables t WHERE t.relid::oid = c.oid)
	LOOP
		IF NOT heir.has_key THEN
			IF TG_TAG <> 'ALTER TABLE' THEN
				UPDATE @extschema@.sync_tables_dropped
				   SET made = heir.relid
				 WHERE (table_schema, table_name) = (heir.nspname::text, heir.relname::text);
			END IF;
			RAISE WARNING 'table "%" takes the place of tracked table "%" but has no primary key',
				heir.relname, heir.relname
				USING DETAIL = 'syncq tracks it in the dropped table''s place once it has one, in this transaction.',
					  HINT = 'Add the primary key in this transaction (ALTER TABLE ... ADD PRIMARY KEY), or call sync_track() once it has one.';
			CONTINUE;
		END IF;
		PERFORM @extschema@.sync_track(heir.relid::regclass, heir.priority, heir.keys);
		IF TG_TAG <> 'ALTER TABLE' OR heir.made = heir.relid THEN
			EXECUTE format('CREATE OR REPLACE TRIGGER syncq_capture AFTER INSERT OR UPDATE OR DELETE ON %I.%I '
						   'FOR EACH ROW EXECUTE FUNCTION %s(%L, %L)',
						   heir.nspname, heir.relname, '@extschema@.syncq_capture'::regproc,
						   heir.priority, 'copy');
		END IF;
		UPDATE @extschema@.sync_tables SET tracked_at = heir.tracked_at
		 WHERE relid::oid = heir.relid;
		INSERT INTO @extschema@.sync_columns_gone AS g
			   (table_schema, table_name, column_name, renamed_to)
		SELECT heir.nspname, heir.relname, col, NULL
		  FROM unnest(heir.column_names) AS col
		 WHERE NOT EXISTS (SELECT FROM pg_attribute a
						   WHERE a.attrelid = heir.relid AND a.attnum > 0
							 AND NOT a.attisdropped AND a.attname = col)
		ON CONFLICT (table_schema, table_name, column_name)
		DO UPDATE SET renamed_to = NULL, gone_at = pg_catalog.now();
		DELETE FROM @extschema@.sync_columns_gone g
		 USING pg_attribute a
		 WHERE (g.table_schema, g.table_name) = (heir.nspname::text, heir.relname::text)
		   AND a.attrelid = heir.relid AND a.attnum > 0 AND NOT a.attisdropped
		   AND g.column_name = a.attname;
		DELETE FROM @extschema@.sync_tables_dropped
		 WHERE (table_schema, table_name) = (heir.nspname::text, heir.relname::text);
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION syncq_follow_rebuild() FROM PUBLIC;
CREATE EVENT TRIGGER syncq_rebuild_drop ON sql_drop
	EXECUTE FUNCTION syncq_follow_rebuild();
CREATE EVENT TRIGGER syncq_rebuild_take ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
	EXECUTE FUNCTION syncq_follow_rebuild();

-- Corrections are looked up by node and table (issue 13, keys the app
-- sets: hub/apply.c, read_follows).
CREATE INDEX sync_queue_for_node ON sync_queue (for_node, table_name) WHERE for_node IS NOT NULL;

-- The hub's own changes since a snapshot are looked up by origin and
-- transaction (issue 15: a fold read every relay of the uploads side by
-- side).
CREATE INDEX sync_queue_origin_txid ON sync_queue (origin, sync_xid_value(txid)) WHERE for_node IS NULL;

-- The queue is read by transaction through a B-tree, not BRIN (issue 15;
-- sql/src/20_replication.sql says why).
DROP INDEX sync_queue_txid_brin;
CREATE INDEX sync_queue_txid ON sync_queue (txid);

-- sync_prune() finds the rows it deletes through sync_queue_txid, planned
-- for the horizon at each call: it holds sync_hub_state's row, which every
-- fold takes, and with nothing to delete a scan of 300,000 queued rows
-- took 24-120 ms against 0.07 ms.
CREATE OR REPLACE FUNCTION sync_prune() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
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
	DELETE FROM sync_queue WHERE txid < needed;
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state
	   SET horizon_xmin = greatest(horizon_xmin, needed), pruned_at = now();
	RETURN n;
END
$$;
