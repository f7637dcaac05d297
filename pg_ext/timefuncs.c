/*
 * timefuncs.c
 *	  The timezone vocabulary shared with the SQLite extension.
 *
 *	  eastern_date()              today's date in America/New_York
 *	  eastern_date(ts)            America/New_York calendar date of instant ts
 *	  eastern_now()               the current instant (transaction start)
 *	  utc_to_eastern(ts)          America/New_York wall time of ts
 *	  zone_date(ts, zone)         calendar date of ts in an IANA zone
 *	  zone_time(ts, zone)         wall time of ts in an IANA zone
 *
 * Every ts argument is an instant: the SQL script declares each function
 * for timestamptz and for timestamp, and both reach the same C function,
 * because a timestamp read as UTC has the same internal value as the
 * timestamptz of that instant.  That is what makes the one-argument forms
 * IMMUTABLE: they never consult the session's TimeZone.
 */
#include "syncq.h"

#include "access/xact.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(eastern_date);
PG_FUNCTION_INFO_V1(eastern_date_today);
PG_FUNCTION_INFO_V1(eastern_now);
PG_FUNCTION_INFO_V1(utc_to_eastern);
PG_FUNCTION_INFO_V1(zone_date);
PG_FUNCTION_INFO_V1(zone_time);

/*
 * Look up an IANA zone by name, or raise an error naming it.
 *
 * pg_tzset() keeps its own cache of loaded zones, so this is cheap after
 * the first call for a name.
 */
static pg_tz *
lookup_zone(const char *zone_name)
{
	pg_tz	   *tz = pg_tzset(zone_name);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", zone_name),
				 errhint("Use an IANA time zone name such as \"America/New_York\" or \"Europe/London\".")));
	return tz;
}

/* The America/New_York zone, loaded once per backend. */
static pg_tz *
eastern_zone(void)
{
	static pg_tz *eastern = NULL;

	if (eastern == NULL)
		eastern = lookup_zone(SYNCQ_EASTERN_ZONE);
	return eastern;
}

/* Break instant ts into wall-clock fields of zone tz. */
static void
instant_to_tm(TimestampTz ts, pg_tz *tz, struct pg_tm *tm, fsec_t *fsec)
{
	int			tzoff;

	if (timestamp2tm(ts, &tzoff, tm, fsec, NULL, tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
}

/* Calendar date of instant ts in zone tz; infinities map to infinities. */
static DateADT
instant_date(TimestampTz ts, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_IS_NOBEGIN(ts))
	{
		DateADT		d;

		DATE_NOBEGIN(d);
		return d;
	}
	if (TIMESTAMP_IS_NOEND(ts))
	{
		DateADT		d;

		DATE_NOEND(d);
		return d;
	}
	instant_to_tm(ts, tz, &tm, &fsec);
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}

/* Wall time (timestamp without time zone) of instant ts in zone tz. */
static Timestamp
instant_wall_time(TimestampTz ts, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;
	Timestamp	result;

	if (TIMESTAMP_NOT_FINITE(ts))
		return ts;
	instant_to_tm(ts, tz, &tm, &fsec);
	if (tm2timestamp(&tm, fsec, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/*
 * eastern_date(ts) - the America/New_York date of instant ts
 */
Datum
eastern_date(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATEADT(instant_date(PG_GETARG_TIMESTAMPTZ(0), eastern_zone()));
}

/*
 * eastern_date() - today's date in America/New_York, as of transaction start
 */
Datum
eastern_date_today(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATEADT(instant_date(GetCurrentTransactionStartTimestamp(),
								   eastern_zone()));
}

/*
 * eastern_now() - the current instant (transaction start, as now())
 */
Datum
eastern_now(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp());
}

/*
 * utc_to_eastern(ts) - America/New_York wall time of instant ts
 */
Datum
utc_to_eastern(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMP(instant_wall_time(PG_GETARG_TIMESTAMPTZ(0),
										  eastern_zone()));
}

/*
 * zone_date(ts, zone) - calendar date of instant ts in an IANA zone
 */
Datum
zone_date(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	char	   *zone_name = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_DATEADT(instant_date(ts, lookup_zone(zone_name)));
}

/*
 * zone_time(ts, zone) - wall time of instant ts in an IANA zone
 */
Datum
zone_time(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	char	   *zone_name = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TIMESTAMP(instant_wall_time(ts, lookup_zone(zone_name)));
}
