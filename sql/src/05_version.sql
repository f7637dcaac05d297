
-- ---------------------------------------------------------------------------
-- Version: which syncq this database runs, as SQLite's syncq_version(),
-- `syncqd --version` and syncqd's status JSON ("version") say it.
--
-- It reads the installed version of the extension rather than holding a
-- literal, so it follows every ALTER EXTENSION syncq UPDATE by itself.
-- ---------------------------------------------------------------------------

CREATE FUNCTION syncq_version() RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	AS $$ SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'syncq' $$;
COMMENT ON FUNCTION syncq_version() IS 'the installed version of syncq (as syncqd --version)';
