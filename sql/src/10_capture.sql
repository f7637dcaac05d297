
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
	-- a correction for one client only (docs/replication.md): the hub's
	-- answer to that client's change for_seq, replacing its version
	-- replaces when the hub re-stamped it; NULL: for every client but origin
	for_node     uuid,
	for_seq      bigint,
	replaces     timestamptz,
	CHECK ((op = 'D') = (row_data IS NULL)),
	CONSTRAINT sync_queue_correction_check
		CHECK (for_node IS NOT NULL OR (for_seq IS NULL AND replaces IS NULL)),
	-- a key and a row are JSON objects (a row written by hand that is not
	-- would stop every client's download)
	CONSTRAINT sync_queue_json_check
		CHECK (pg_catalog.json_typeof(pk) = 'object'
			   AND (row_data IS NULL OR pg_catalog.json_typeof(row_data) = 'object'))
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
	tracked_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- the key policy (docs/replication.md, Keys the hub assigns): 'auto'
	-- (the hub's, if the key is one integer column the database assigns),
	-- 'hub' (the same, checked when tracked) or 'natural' (the app's)
	keys         text NOT NULL DEFAULT 'auto' CHECK (keys IN ('auto', 'hub', 'natural'))
);
COMMENT ON TABLE sync_tables IS 'tables whose changes syncq captures, with their priority and key policy';
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

CREATE FUNCTION sync_track(tbl regclass, priority text DEFAULT 'immediate', keys text DEFAULT NULL) RETURNS text
	AS 'MODULE_PATHNAME', 'sync_track'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_track(regclass, text, text) IS 'capture every change of a table (priority immediate or batched; keys auto, hub or natural, NULL: as it was); returns the priority';

CREATE FUNCTION sync_untrack(tbl regclass) RETURNS boolean
	AS 'MODULE_PATHNAME', 'sync_untrack'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_untrack(regclass) IS 'stop capturing a table; queued rows stay; false if it was not tracked';

CREATE FUNCTION sync_enqueue(tbl regclass, op text, pk jsonb, "row" jsonb,
							 immediate boolean DEFAULT true) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sync_enqueue'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_enqueue(regclass, text, jsonb, jsonb, boolean) IS 'queue one change of a tracked table by hand; returns its seq';

CREATE FUNCTION sync_trigger() RETURNS boolean
	AS 'MODULE_PATHNAME', 'sync_trigger'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_trigger() IS 'ask for a sync now (NOTIFY sync_queue, ''request'')';

CREATE FUNCTION sync_row_json(tbl regclass, r record) RETURNS json
	AS 'MODULE_PATHNAME', 'sync_row_json'
	LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION sync_row_json(regclass, record) IS 'a row of a table as its capture writes it (what a first sync sends)';

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
-- rows any more).  Keep sync_columns_gone: a column dropped from a tracked
-- table (sql_drop names it), a column renamed (sync_columns held its old
-- name), a column that is back again.  Keep sync_tables_renamed: the
-- names a tracked table had.
CREATE FUNCTION syncq_watch_ddl() RETURNS event_trigger
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
REVOKE ALL ON FUNCTION syncq_watch_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER syncq_watch_drop ON sql_drop
	EXECUTE FUNCTION syncq_watch_ddl();
CREATE EVENT TRIGGER syncq_watch_alter ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION syncq_watch_ddl();
