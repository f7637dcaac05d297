
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
