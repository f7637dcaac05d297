
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
