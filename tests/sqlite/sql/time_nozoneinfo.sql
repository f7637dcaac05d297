-- The time functions on a machine without a time zone database: the harness
-- runs this file with TZDIR set to an empty directory.  America/New_York
-- (and US/Eastern) come from syncq's built-in rules and stay exact; UTC
-- always works; every other zone is an error naming it.

-- New York, 2025: spring forward 07:00Z, fall back 06:00Z, +-1 s
SELECT 'ny spring', utc_to_eastern('2025-03-09T06:59:59Z'), utc_to_eastern('2025-03-09T07:00:00Z'),
       utc_to_eastern('2025-03-09T07:00:01Z');
SELECT 'ny fall', utc_to_eastern('2025-11-02T05:59:59Z'), utc_to_eastern('2025-11-02T06:00:00Z'),
       utc_to_eastern('2025-11-02T06:00:01Z');
SELECT 'ny midnight', eastern_date('2025-07-24T03:59:59Z'), eastern_date('2025-07-24T04:00:00Z'),
       eastern_date('2025-01-16T04:59:59Z'), eastern_date('2025-01-16T05:00:00Z');
SELECT 'ny zone_*', zone_time(1753327800, 'America/New_York'), zone_date(1753327800, 'America/New_York'),
       zone_time(1753327800, 'US/Eastern');

-- Every rule era of the built-in rules
SELECT 'ny 1970', utc_to_eastern('1970-04-26T06:59:59Z'), utc_to_eastern('1970-04-26T07:00:00Z');
SELECT 'ny 1974', utc_to_eastern('1974-01-06T06:59:59Z'), utc_to_eastern('1974-01-06T07:00:00Z');
SELECT 'ny 1975', utc_to_eastern('1975-02-23T06:59:59Z'), utc_to_eastern('1975-02-23T07:00:00Z');
SELECT 'ny 1986', utc_to_eastern('1986-04-27T06:59:59Z'), utc_to_eastern('1986-04-27T07:00:00Z');
SELECT 'ny 1987', utc_to_eastern('1987-04-05T06:59:59Z'), utc_to_eastern('1987-04-05T07:00:00Z');
SELECT 'ny 2006', utc_to_eastern('2006-10-29T05:59:59Z'), utc_to_eastern('2006-10-29T06:00:00Z');
SELECT 'ny 2007', utc_to_eastern('2007-03-11T06:59:59Z'), utc_to_eastern('2007-03-11T07:00:00Z'),
       utc_to_eastern('2007-11-04T05:59:59Z'), utc_to_eastern('2007-11-04T06:00:00Z');
SELECT 'ny 2099', utc_to_eastern('2099-03-08T06:59:59Z'), utc_to_eastern('2099-03-08T07:00:00Z'),
       utc_to_eastern('2099-11-01T05:59:59Z'), utc_to_eastern('2099-11-01T06:00:00Z');
SELECT 'ny 1944', utc_to_eastern('1944-01-01T12:00:00Z');
SELECT 'ny lmt', utc_to_eastern('1883-11-18T16:59:59Z'), utc_to_eastern('1883-11-18T17:00:00Z');

-- The current time still works
SELECT 'today', eastern_date() BETWEEN zone_date(datetime('now', '-5 seconds'), 'America/New_York')
                                   AND zone_date(datetime('now', '+5 seconds'), 'America/New_York');
SELECT 'now', abs(unixepoch(eastern_now()) - unixepoch('now')) <= 5;

-- UTC needs no file
SELECT 'utc', zone_time(1753327800, 'UTC'), zone_date(1753327800, 'Etc/UTC'), zone_time(0, 'GMT');

-- Any other zone is an error naming it
SELECT zone_date(1753327800, 'Europe/London');
SELECT zone_time(1753327800, 'Asia/Kolkata');
SELECT zone_date(0, '../../etc/passwd');
SELECT 'after errors', eastern_date('2025-07-24T03:30:00Z');
