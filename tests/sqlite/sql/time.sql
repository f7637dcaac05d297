-- syncq time functions in SQLite: eastern_date, eastern_now, utc_to_eastern,
-- zone_date, zone_time.  The harness loads the extension first.

-- The README examples
SELECT 'readme', eastern_date('2025-07-24T03:30:00Z'),
       utc_to_eastern('2025-07-24T03:30:00Z'),
       zone_date('2025-07-23 20:30:00+00', 'Asia/Kolkata'),
       zone_time(1753327800, 'Pacific/Chatham');

-- New York, spring forward: 2025-03-09 02:00 EST -> 03:00 EDT (07:00Z)
SELECT 'ny spring -1s', utc_to_eastern('2025-03-09T06:59:59Z'), eastern_date('2025-03-09T06:59:59Z');
SELECT 'ny spring  0s', utc_to_eastern('2025-03-09T07:00:00Z'), eastern_date('2025-03-09T07:00:00Z');
SELECT 'ny spring +1s', utc_to_eastern('2025-03-09T07:00:01Z'), eastern_date('2025-03-09T07:00:01Z');
SELECT 'ny spring int', utc_to_eastern(1741503599), utc_to_eastern(1741503600), utc_to_eastern(1741503601);

-- New York, fall back: 2025-11-02 02:00 EDT -> 01:00 EST (06:00Z)
SELECT 'ny fall -1s', utc_to_eastern('2025-11-02T05:59:59Z'), eastern_date('2025-11-02T05:59:59Z');
SELECT 'ny fall  0s', utc_to_eastern('2025-11-02T06:00:00Z'), eastern_date('2025-11-02T06:00:00Z');
SELECT 'ny fall +1s', utc_to_eastern('2025-11-02T06:00:01Z'), eastern_date('2025-11-02T06:00:01Z');
SELECT 'ny fall int', utc_to_eastern(1762063199), utc_to_eastern(1762063200), utc_to_eastern(1762063201);
-- the repeated hour 01:00-01:59 wall time, once in EDT and once in EST
SELECT 'ny fall 01:30', utc_to_eastern('2025-11-02T05:30:00Z'), utc_to_eastern('2025-11-02T06:30:00Z');

-- Across midnight: 23:30 and 00:30 Eastern, summer (EDT) and winter (EST)
SELECT 'ny 23:30 edt', utc_to_eastern('2025-07-24T03:30:00Z'), eastern_date('2025-07-24T03:30:00Z');
SELECT 'ny 00:30 edt', utc_to_eastern('2025-07-24T04:30:00Z'), eastern_date('2025-07-24T04:30:00Z');
SELECT 'ny 23:30 est', utc_to_eastern('2025-01-16T04:30:00Z'), eastern_date('2025-01-16T04:30:00Z');
SELECT 'ny 00:30 est', utc_to_eastern('2025-01-16T05:30:00Z'), eastern_date('2025-01-16T05:30:00Z');
SELECT 'ny new year', eastern_date('2026-01-01T04:59:59Z'), eastern_date('2026-01-01T05:00:00Z');
SELECT 'same instant', eastern_date('2025-07-23 23:30:00-04:00'), eastern_date('2025-07-24T03:30:00Z'),
       eastern_date(1753327800), eastern_date(1753327800.0);

-- Historical New York: 1974 and 1975 emergency rules, war time, LMT
SELECT 'ny 1974', utc_to_eastern('1974-01-06T06:59:59Z'), utc_to_eastern('1974-01-06T07:00:00Z');
SELECT 'ny 1975', utc_to_eastern('1975-02-23T06:59:59Z'), utc_to_eastern('1975-02-23T07:00:00Z');
SELECT 'ny 1944', utc_to_eastern('1944-01-01T12:00:00Z');
SELECT 'ny lmt', utc_to_eastern('1883-11-18T16:59:59Z'), utc_to_eastern('1883-11-18T17:00:00Z');
SELECT 'ny lmt date', eastern_date('1800-01-01T04:56:01Z'), eastern_date('1800-01-01T04:56:02Z');
SELECT 'ny 2007', utc_to_eastern('2007-03-11T06:59:59Z'), utc_to_eastern('2007-03-11T07:00:00Z');
SELECT 'ny 2099', utc_to_eastern('2099-03-08T07:00:00Z'), utc_to_eastern('2099-11-01T06:00:00Z');

-- Other zones: half-hour, 45-minute, southern hemisphere
SELECT 'kolkata', zone_time('2025-07-23T18:29:59Z', 'Asia/Kolkata'), zone_date('2025-07-23T18:29:59Z', 'Asia/Kolkata'),
       zone_time('2025-07-23T18:30:00Z', 'Asia/Kolkata'), zone_date('2025-07-23T18:30:00Z', 'Asia/Kolkata');
SELECT 'kolkata lmt', zone_time('1850-06-01T00:00:00Z', 'Asia/Kolkata');
SELECT 'chatham winter', zone_time('2025-07-24T03:30:00Z', 'Pacific/Chatham'), zone_date('2025-07-24T11:14:59Z', 'Pacific/Chatham'),
       zone_date('2025-07-24T11:15:00Z', 'Pacific/Chatham');
SELECT 'chatham summer', zone_time('2025-01-15T12:00:00Z', 'Pacific/Chatham');
SELECT 'chatham spring', zone_time('2025-09-27T14:00:00Z', 'Pacific/Chatham'), zone_time('2025-09-27T13:59:59Z', 'Pacific/Chatham');
SELECT 'st johns', zone_time('2025-01-15T12:00:00Z', 'America/St_Johns'), zone_time('2025-07-15T12:00:00Z', 'America/St_Johns');
SELECT 'st johns dst', zone_time('2025-03-09T05:29:59Z', 'America/St_Johns'), zone_time('2025-03-09T05:30:00Z', 'America/St_Johns');
SELECT 'sydney summer', zone_time('2025-01-15T12:00:00Z', 'Australia/Sydney'), zone_date('2025-01-15T12:59:59Z', 'Australia/Sydney'),
       zone_date('2025-01-15T13:00:00Z', 'Australia/Sydney');
SELECT 'sydney winter', zone_time('2025-07-15T12:00:00Z', 'Australia/Sydney'), zone_date('2025-07-15T13:59:59Z', 'Australia/Sydney'),
       zone_date('2025-07-15T14:00:00Z', 'Australia/Sydney');
SELECT 'sydney april', zone_time('2025-04-05T15:59:59Z', 'Australia/Sydney'), zone_time('2025-04-05T16:00:00Z', 'Australia/Sydney');
SELECT 'sydney october', zone_time('2025-10-04T15:59:59Z', 'Australia/Sydney'), zone_time('2025-10-04T16:00:00Z', 'Australia/Sydney');
SELECT 'london', zone_time('2025-03-30T00:59:59Z', 'Europe/London'), zone_time('2025-03-30T01:00:00Z', 'Europe/London');
SELECT 'utc names', zone_time(0, 'UTC'), zone_time(0, 'Etc/UTC'), zone_time(0, 'GMT');
SELECT 'aliases', zone_time(1753327800, 'US/Eastern'), zone_time(1753327800, 'America/New_York'),
       zone_time(1753327800, 'america/new_york');
SELECT 'far future', zone_time('2250-07-01T12:00:00Z', 'America/New_York'), zone_time('2250-07-01T12:00:00Z', 'Australia/Sydney');

-- Unix seconds: INTEGER, and REAL rounded to the microsecond
SELECT 'int', utc_to_eastern(0), utc_to_eastern(-1), utc_to_eastern(1000000000), zone_date(1753327800, 'UTC');
SELECT 'real', utc_to_eastern(1.5), utc_to_eastern(-0.25), utc_to_eastern(1753327800.125);
SELECT 'real usec', zone_time(1753327800.000001, 'UTC'), zone_time(1753327800.123456, 'UTC'), zone_time(0.0000005, 'UTC'),
       zone_time(0.0000015, 'UTC');
SELECT 'limits', zone_time(-62135596800, 'UTC'), zone_time(253402300799, 'UTC'), zone_time('9999-12-31T23:59:59.999999Z', 'UTC');

-- Every accepted text form (no offset means UTC)
SELECT 'date only', zone_time('2025-07-24', 'UTC');
SELECT 'hh:mm', zone_time('2025-07-24 12:34', 'UTC'), zone_time('2025-07-24T12:34', 'UTC');
SELECT 'hh:mm:ss', zone_time('2025-07-24 12:34:56', 'UTC'), zone_time('2025-07-24T12:34:56', 'UTC'), zone_time('2025-07-24t12:34:56', 'UTC');
SELECT 'Z', zone_time('2025-07-24T12:34:56Z', 'UTC'), zone_time('2025-07-24T12:34:56z', 'UTC'), zone_time('2025-07-24T12:34Z', 'UTC');
SELECT '+HH', zone_time('2025-07-24T12:34:56+02', 'UTC'), zone_time('2025-07-24T12:34:56-05', 'UTC');
SELECT '+HH:MM', zone_time('2025-07-24T12:34:56+05:30', 'UTC'), zone_time('2025-07-24T12:34:56-03:30', 'UTC');
SELECT '+HHMM', zone_time('2025-07-24T12:34:56+0545', 'UTC'), zone_time('2025-07-24T12:34:56-0930', 'UTC');
SELECT '+HH:MM:SS', zone_time('1883-11-18T12:03:58-04:56:02', 'UTC'), zone_time('2025-07-24T12:34:56+00:00:01', 'UTC');
SELECT 'extremes', zone_time('2025-07-24T12:00:00+15:59', 'UTC'), zone_time('2025-07-24T12:00:00-15:59', 'UTC');
SELECT 'spaces', zone_time('  2025-07-24 12:34:56  ', 'UTC'), zone_time('2025-07-24 12:34:56 -04:00', 'UTC'),
       zone_time(char(9) || '2025-07-24T12:34:56Z' || char(10), 'UTC'), zone_time('2025-07-24  12:34', 'UTC');
SELECT 'round trip', zone_time(zone_time('1883-11-18T16:59:59Z', 'America/New_York'), 'UTC'),
       utc_to_eastern(utc_to_eastern('2025-11-02T05:59:59.5Z'));

-- Fractional seconds: 1..9 digits, kept to the microsecond, rounded like
-- PostgreSQL (to nearest, ties to even), trailing zeros not shown
SELECT 'frac', zone_time('2025-07-24T12:34:56.5Z', 'UTC'), zone_time('2025-07-24T12:34:56.50Z', 'UTC'),
       zone_time('2025-07-24T12:34:56.000Z', 'UTC'), zone_time('2025-07-24T12:34:56.123456Z', 'UTC');
SELECT 'frac 7-9', zone_time('2025-07-24T12:34:56.1234564Z', 'UTC'), zone_time('2025-07-24T12:34:56.1234566Z', 'UTC'),
       zone_time('2025-07-24T12:34:56.123456789Z', 'UTC');
SELECT 'frac ties', zone_time('2025-07-24T12:34:56.0000005Z', 'UTC'), zone_time('2025-07-24T12:34:56.0000015Z', 'UTC'),
       zone_time('2025-07-24T12:34:56.0000025Z', 'UTC'), zone_time('2025-07-24T12:34:56.00000251Z', 'UTC');
SELECT 'frac carry', zone_time('2025-12-31T23:59:59.9999995Z', 'UTC'), eastern_date('2026-01-01T04:59:59.9999996Z');
SELECT 'frac offset', utc_to_eastern('2025-07-24T03:30:00.25+00:00'), zone_time('2025-07-24T03:30:00.000001-04:00', 'Asia/Kolkata');

-- NULL in, NULL out
SELECT 'null', eastern_date(NULL) IS NULL, utc_to_eastern(NULL) IS NULL, zone_date(NULL, 'UTC') IS NULL,
       zone_time(NULL, 'UTC') IS NULL, zone_date(0, NULL) IS NULL, zone_time(0, NULL) IS NULL,
       zone_date(NULL, NULL) IS NULL, zone_time(NULL, 'Mars/Olympus') IS NULL, zone_date('garbage', NULL) IS NULL;

-- The current time
SELECT 'today', eastern_date() BETWEEN zone_date(datetime('now', '-5 seconds'), 'America/New_York')
                                   AND zone_date(datetime('now', '+5 seconds'), 'America/New_York');
SELECT 'now format', eastern_now() GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]-0[45]:00';
SELECT 'now value', abs(unixepoch(eastern_now()) - unixepoch('now')) <= 5,
       substr(eastern_now(), 1, 10) = eastern_date() OR time('now') BETWEEN '03:59:50' AND '05:00:10';

-- Flags: deterministic functions back indexes and generated columns
SELECT 'flags', name, narg, flags & 0x800 AS deterministic, flags & 0x200000 AS innocuous
  FROM pragma_function_list
 WHERE name IN ('eastern_date', 'eastern_now', 'utc_to_eastern', 'zone_date', 'zone_time')
 ORDER BY name, narg;
-- completed_at has no type: a TEXT column would turn 1753327800 into the
-- text '1753327800', which is not an instant (see the errors below)
CREATE TABLE audit_completions(id INTEGER PRIMARY KEY, completed_at,
  completed_on TEXT GENERATED ALWAYS AS (eastern_date(completed_at)) STORED);
CREATE INDEX audit_completions_day ON audit_completions(eastern_date(completed_at));
INSERT INTO audit_completions(completed_at) VALUES
  ('2025-07-24T03:30:00Z'), ('2025-07-24T04:30:00Z'), ('2025-07-23 20:00:00-04:00'), (1753327800);
SELECT 'generated', id, completed_on FROM audit_completions ORDER BY id;
SELECT 'index', count(*) FROM audit_completions WHERE eastern_date(completed_at) = '2025-07-23';
CREATE INDEX bad_index ON audit_completions(eastern_now());

-- The zone cache: more zones than it holds, many rows each
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999),
z(k, name) AS (VALUES (0, 'Europe/London'), (1, 'Asia/Kolkata'), (2, 'Pacific/Chatham'), (3, 'America/St_Johns'),
  (4, 'Australia/Sydney'), (5, 'America/Chicago'), (6, 'America/Los_Angeles'), (7, 'Europe/Paris'),
  (8, 'Asia/Tokyo'), (9, 'Africa/Nairobi'), (10, 'America/New_York'), (11, 'UTC'))
SELECT 'cache', count(*), count(DISTINCT zone_time(1700000000 + i * 7919, name)),
       sum(substr(zone_time(1700000000 + i * 7919, name), 21) = substr(zone_time(1700000000, name), 21))
  FROM n JOIN z ON z.k = n.i % 12;

-- Errors: each names the function and the bad value
SELECT eastern_date('2025-02-30');
SELECT eastern_date('2025-02-29');
SELECT eastern_date('2024-02-30');
SELECT eastern_date('2025-04-31');
SELECT eastern_date('2025-13-01');
SELECT eastern_date('2025-00-10');
SELECT eastern_date('2025-01-00');
SELECT eastern_date('0000-01-01');
SELECT utc_to_eastern('2025-07-24 25:00');
SELECT utc_to_eastern('2025-07-24T24:00:00');
SELECT utc_to_eastern('2025-07-24T12:60:00');
SELECT utc_to_eastern('2025-07-24T12:34:60');
SELECT utc_to_eastern('2025-07-24T12:34:61');
SELECT utc_to_eastern('');
SELECT utc_to_eastern('   ');
SELECT utc_to_eastern('2025');
SELECT utc_to_eastern('2025-07');
SELECT utc_to_eastern('2025-7-24');
SELECT utc_to_eastern('25-07-24');
SELECT utc_to_eastern('2025/07/24');
SELECT utc_to_eastern('2025-07-24T');
SELECT utc_to_eastern('2025-07-24T12');
SELECT utc_to_eastern('2025-07-24T1:00');
SELECT utc_to_eastern('2025-07-24T12:34:5');
SELECT utc_to_eastern('2025-07-24T12:34:56.');
SELECT utc_to_eastern('2025-07-24T12:34:56.1234567891');
SELECT utc_to_eastern('2025-07-24T12:34.5');
SELECT utc_to_eastern('2025-07-24T12:34:56Zjunk');
SELECT utc_to_eastern('2025-07-24T12:34:56 junk');
SELECT utc_to_eastern('2025-07-24Z');
SELECT utc_to_eastern('2025-07-24T12:34:56+5');
SELECT utc_to_eastern('2025-07-24T12:34:56+053');
SELECT utc_to_eastern('2025-07-24T12:34:56+16:00');
SELECT utc_to_eastern('2025-07-24T12:34:56+05:60');
SELECT utc_to_eastern('2025-07-24T12:34:56+05:30:60');
SELECT utc_to_eastern('2025-07-24T12:34:56 EST');
SELECT utc_to_eastern('2025-07-24T12:34:56ZZ');
SELECT utc_to_eastern('1753327800');
SELECT utc_to_eastern('1753327800.5');
SELECT utc_to_eastern('now');
SELECT utc_to_eastern('2025-07-24' || char(0) || 'T12:00:00Z');
SELECT eastern_date(x'323032352d30372d3234');
SELECT zone_time(zeroblob(40), 'UTC');
SELECT eastern_date(1e300);
SELECT eastern_date(-1e300);
SELECT eastern_date(9e999);
SELECT eastern_date(1000000000000000);
SELECT eastern_date(-62135596800);
SELECT zone_date('9999-12-31T23:59:59Z', 'Asia/Kolkata');
SELECT zone_date(0, 'Mars/Olympus');
SELECT zone_time(0, 'Europe/Londn');
SELECT zone_date(0, '../../etc/passwd');
SELECT zone_date(0, '/etc/passwd');
SELECT zone_date(0, 'America/../Europe/London');
SELECT zone_date(0, 'America//New_York');
SELECT zone_date(0, 'America/');
SELECT zone_date(0, 'America');
SELECT zone_date(0, '');
SELECT zone_date(0, 'New York');
SELECT zone_date(0, 'Europe/London' || char(0) || 'x');
SELECT zone_date(0, 'zone.tab');
SELECT zone_date(0, printf('%.256c', 'A'));
SELECT zone_date(0, 12);
SELECT 'after errors', eastern_date('2025-07-24T03:30:00Z');
