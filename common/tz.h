/*
** tz.h - the syncq time zone engine.
**
** One engine, shared by the SQLite extension (timefuncs.c), the syncqd
** daemon and the test tools:
**
**   * IANA zones read from TZif files (v1, v2, v3+) in $TZDIR or
**     /usr/share/zoneinfo, with the POSIX TZ footer rule used after the
**     last transition;
**   * built-in America/New_York (alias US/Eastern) and UTC (Etc/UTC, GMT)
**     for machines without a time zone database;
**   * proleptic Gregorian civil-date arithmetic (years 1..9999);
**   * the ISO-8601 instant parser and the wall-time formatters used by
**     every syncq time function.
**
** Instants are Unix seconds (int64_t) plus microseconds (0..999999).
** Offsets are seconds east of UTC: New York in winter is -18000.
**
** Return codes are SQLite's:
**   SQLITE_OK        success
**   SQLITE_NOMEM     out of memory
**   SQLITE_NOTFOUND  no such zone (no file, no built-in)
**   SQLITE_MISUSE    not a valid zone name (checked before any file access)
**   SQLITE_CORRUPT   the zone file is not a valid TZif file, or one with
**                    leap seconds ("right/" zones), which are not supported
**   SQLITE_IOERR     the zone file exists but could not be read
**   SQLITE_RANGE     an instant outside the supported range
** syncq_tz_errstr() turns each into a short lowercase phrase.
*/
#ifndef SYNCQ_TZ_H
#define SYNCQ_TZ_H

#include <stdint.h>

struct sqlite3;

/* Supported instants: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, with
** two days of slack either side so that any offset can be applied. */
#define SYNCQ_INSTANT_MIN (-62135596800LL - 2*86400LL)
#define SYNCQ_INSTANT_MAX (253402300799LL + 2*86400LL)

/* Longest name syncq_tz_load() accepts. */
#define SYNCQ_TZ_NAME_MAX 255

/* Buffer sizes (including the terminating NUL) for the formatters. */
#define SYNCQ_DATE_BUFSZ 11     /* YYYY-MM-DD */
#define SYNCQ_WALL_BUFSZ 40     /* YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM:SS */

/* Flags for syncq_format_wall(). */
#define SYNCQ_FMT_TRIM  0       /* fraction only when non-zero, zeros trimmed */
#define SYNCQ_FMT_USEC  1       /* always six fractional digits */
#define SYNCQ_FMT_SIX   2       /* six digits, only when not zero */

typedef struct SyncqTz SyncqTz;

/* Zones */
int syncq_tz_load(const char *zName, SyncqTz **ppTz);
void syncq_tz_free(SyncqTz *pTz);
const char *syncq_tz_name(const SyncqTz *pTz);
int syncq_tz_is_builtin(const SyncqTz *pTz);
int syncq_tz_offset(const SyncqTz *pTz, int64_t t, int *pOffset);
int syncq_tz_next_transition(const SyncqTz *pTz, int64_t after, int64_t *pNext);
const char *syncq_tz_errstr(int rc);

/* Civil dates (proleptic Gregorian; days counted from 1970-01-01) */
int64_t syncq_days_from_civil(int y, int m, int d);
void syncq_civil_from_days(int64_t days, int *pY, int *pM, int *pD);
int syncq_days_in_month(int y, int m);

/* ISO-8601 instants */
int syncq_parse_instant(const char *z, int n, int64_t *pSec, int32_t *pUsec);
int syncq_instant_from_real(double r, int64_t *pSec, int32_t *pUsec);
int syncq_format_date(char *zBuf, int64_t t, int offset);
int syncq_format_wall(char *zBuf, int64_t t, int32_t usec, int offset,
                      int flags);

/* The SQLite SQL functions (timefuncs.c) */
int syncq_time_register(struct sqlite3 *db, char **pzErrMsg);

#endif /* SYNCQ_TZ_H */
