--
-- The timezone vocabulary: eastern_date() and its siblings.
--
CREATE EXTENSION syncq;

-- The session zone must never matter: run everything from Tokyo.
SET timezone = 'Asia/Tokyo';
SET datestyle = ISO;

-- Audit completions at 23:30 and 00:30 Eastern, on both sides of midnight,
-- in summer (EDT, -4) and winter (EST, -5).
SELECT ts, eastern_date(ts), utc_to_eastern(ts)
FROM (VALUES
	('2025-07-24 03:30:00+00'::timestamptz),   -- 23:30 EDT on the 23rd
	('2025-07-24 04:30:00+00'),                -- 00:30 EDT on the 24th
	('2025-01-15 04:30:00+00'),                -- 23:30 EST on the 14th
	('2025-01-15 05:30:00+00')                 -- 00:30 EST on the 15th
) AS v(ts);

-- A timestamp without time zone is read as UTC, not in the session zone.
SELECT eastern_date('2025-07-24 03:30:00'::timestamp) AS as_utc_summer,
       eastern_date('2025-07-24 04:30:00'::timestamp) AS next_day,
       utc_to_eastern('2025-07-24 04:30:00'::timestamp) AS wall;

-- Both daylight-saving changes of 2025 in New York, one second either side.
SELECT t, utc_to_eastern(t), eastern_date(t)
FROM (VALUES
	('2025-03-09 06:59:59+00'::timestamptz), ('2025-03-09 07:00:00+00'),
	('2025-11-02 05:59:59+00'), ('2025-11-02 06:00:00+00')
) AS v(t);

-- Other zones: half-hour, quarter-hour, southern hemisphere.
SELECT z, zone_date('2025-07-23 20:30:00+00', z), zone_time('2025-07-23 20:30:00+00', z)
FROM unnest(ARRAY['Asia/Kolkata', 'Pacific/Chatham', 'America/St_Johns',
                  'Australia/Sydney', 'Europe/London', 'UTC']) AS z;

-- The same as PostgreSQL's own AT TIME ZONE, across a year of hours.
SELECT count(*) AS hours, count(*) FILTER (WHERE
	zone_time(t, 'America/New_York') <> (t AT TIME ZONE 'America/New_York') OR
	eastern_date(t) <> (t AT TIME ZONE 'America/New_York')::date OR
	zone_date(t, 'Australia/Sydney') <> (t AT TIME ZONE 'Australia/Sydney')::date) AS mismatches
FROM generate_series('2024-01-01 00:00:00+00'::timestamptz, '2025-01-01', '1 hour') AS t;

-- Fractional seconds are kept.
SELECT utc_to_eastern('2025-07-24 04:30:00.123456+00'::timestamptz);

-- NULL in, NULL out.
SELECT eastern_date(NULL::timestamptz) IS NULL AS a,
       utc_to_eastern(NULL::timestamp) IS NULL AS b,
       zone_date(now(), NULL) IS NULL AS c,
       zone_time(NULL::timestamptz, 'UTC') IS NULL AS d;

-- Infinity stays infinity.
SELECT eastern_date('infinity'::timestamptz), eastern_date('-infinity'::timestamptz),
       utc_to_eastern('infinity'::timestamptz);

-- The no-argument forms agree with the transaction's clock.
SELECT eastern_date() = (now() AT TIME ZONE 'America/New_York')::date AS today,
       eastern_now() = now() AS now;

-- Errors name the bad value.
SELECT zone_date(now(), 'Mars/Olympus_Mons');
SELECT zone_time(now(), '');
SELECT eastern_date('2025-02-30 00:00:00+00'::timestamptz);
SELECT eastern_date('not a time'::timestamptz);

-- The one-argument forms are IMMUTABLE: they back an index and a generated column.
CREATE TABLE audit_completions (
	id bigint PRIMARY KEY,
	completed_at timestamptz NOT NULL,
	business_date date GENERATED ALWAYS AS (eastern_date(completed_at)) STORED
);
CREATE INDEX ON audit_completions (eastern_date(completed_at));
INSERT INTO audit_completions (id, completed_at) VALUES
	(1, '2025-07-24 03:30:00+00'), (2, '2025-07-24 04:30:00+00');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM audit_completions WHERE eastern_date(completed_at) = '2025-07-23';
SELECT id, business_date FROM audit_completions WHERE eastern_date(completed_at) = '2025-07-23';
RESET enable_seqscan;
SELECT p.proname, p.provolatile, pg_get_function_identity_arguments(p.oid) AS args
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'syncq'
WHERE p.proname IN ('eastern_date', 'eastern_now', 'utc_to_eastern', 'zone_date', 'zone_time')
ORDER BY 1, 3;
DROP TABLE audit_completions;
