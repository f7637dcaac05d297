
-- ---------------------------------------------------------------------------
-- Schema changes of tracked tables: what syncqd needs to follow a column
-- dropped or renamed on the hub (docs/migrating.md).  syncq_watch_ddl()
-- (10_capture.sql) keeps these tables.
-- ---------------------------------------------------------------------------

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
