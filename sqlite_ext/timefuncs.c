/*
** timefuncs.c - syncq's time functions for SQLite.
**
** An instant is ISO-8601 text ("2025-07-24T00:30:00Z",
** "2025-07-23 20:30:00.5-04:00"; no offset means UTC) or Unix seconds
** (INTEGER, or REAL with microseconds).  NULL gives NULL; anything else
** is an error naming the value.
**
**   eastern_date()                     today's date in America/New_York
**   eastern_date('2025-07-24T00:30:00Z')                -> '2025-07-23'
**   zone_date('2025-07-24T00:30:00Z', 'Asia/Kolkata')   -> '2025-07-24'
**   eastern_now()              -> '2025-07-23T20:30:00.123456-04:00'
**   utc_to_eastern(1753317000)        -> '2025-07-23T20:30:00-04:00'
**   zone_time('2025-07-24T00:30:00.5Z', 'Asia/Kolkata')
**                                     -> '2025-07-24T06:00:00.5+05:30'
**
** Zones are loaded once per connection and kept in a small cache shared
** by all the functions (see TzCache).
*/
#define _POSIX_C_SOURCE 200809L
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3
#include "tz.h"

#include <string.h>
#include <time.h>

#define TZ_CACHE_SIZE 8
#define EASTERN_ZONE "America/New_York"
#define ERR_VALUE_MAX 200      /* longest text quoted in an error message */

/*
** The zones a connection has used.  Every function registered by
** syncq_time_register() holds a reference; the last xDestroy frees it.
** SQLite serialises calls on one connection, so no lock is needed.
*/
typedef struct TzCache TzCache;
struct TzCache {
  int nRef;                        /* registered functions using this */
  SyncqTz *pEastern;               /* America/New_York, loaded on first use */
  int iLast;                       /* aZone[] slot of the last hit */
  int iNext;                       /* aZone[] slot to fill next */
  SyncqTz *aZone[TZ_CACHE_SIZE];   /* other zones, round-robin replaced */
};

static void cache_unref(void *pArg){
  TzCache *p = (TzCache*)pArg;
  int i;
  if( --p->nRef>0 ) return;
  syncq_tz_free(p->pEastern);
  for(i=0; i<TZ_CACHE_SIZE; i++) syncq_tz_free(p->aZone[i]);
  sqlite3_free(p);
}

/*
** Quote text value z of nByte bytes for an error message: long values are
** cut short, and text hidden behind a NUL character is pointed out.
*/
static char *quote_value(const char *z, int nByte){
  int n = (int)strlen(z);
  if( n<nByte ){
    return sqlite3_mprintf("\"%.*s%s\" (more text after a NUL character)",
                           ERR_VALUE_MAX, z, n>ERR_VALUE_MAX ? "..." : "");
  }
  return sqlite3_mprintf("\"%.*s%s\"", ERR_VALUE_MAX, z,
                         n>ERR_VALUE_MAX ? "..." : "");
}

/* Report a zone that could not be loaded. */
static void zone_error(sqlite3_context *ctx, const char *zFunc,
                       sqlite3_value *pZone, int rc){
  const char *zName = (const char*)sqlite3_value_text(pZone);
  char *zQuoted;
  char *zMsg;
  if( rc==SQLITE_NOMEM || zName==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  zQuoted = quote_value(zName, sqlite3_value_bytes(pZone));
  if( zQuoted==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  zMsg = sqlite3_mprintf("%s: %s%s %s", zFunc, syncq_tz_errstr(rc),
                         rc==SQLITE_CORRUPT || rc==SQLITE_IOERR ? " for" : "",
                         zQuoted);
  sqlite3_free(zQuoted);
  if( zMsg==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_error(ctx, zMsg, -1);
  sqlite3_free(zMsg);
}

/* America/New_York; NULL after setting an error. */
static SyncqTz *eastern_zone(sqlite3_context *ctx, const char *zFunc){
  TzCache *p = (TzCache*)sqlite3_user_data(ctx);
  if( p->pEastern==0 ){
    int rc = syncq_tz_load(EASTERN_ZONE, &p->pEastern);
    if( rc==SQLITE_NOMEM ){
      sqlite3_result_error_nomem(ctx);
      return 0;
    }
    if( rc!=SQLITE_OK ){
      char *zMsg = sqlite3_mprintf("%s: %s%s \"%s\"", zFunc,
                                   syncq_tz_errstr(rc),
                                   rc==SQLITE_CORRUPT || rc==SQLITE_IOERR
                                     ? " for" : "", EASTERN_ZONE);
      if( zMsg==0 ){
        sqlite3_result_error_nomem(ctx);
        return 0;
      }
      sqlite3_result_error(ctx, zMsg, -1);
      sqlite3_free(zMsg);
      return 0;
    }
  }
  return p->pEastern;
}

/* The zone named by argument pVal; NULL after setting an error. */
static SyncqTz *named_zone(sqlite3_context *ctx, const char *zFunc,
                           sqlite3_value *pVal){
  TzCache *p = (TzCache*)sqlite3_user_data(ctx);
  const char *zName = (const char*)sqlite3_value_text(pVal);
  SyncqTz *pTz;
  int i, rc;
  if( zName==0 ){
    sqlite3_result_error_nomem(ctx);
    return 0;
  }
  if( (int)strlen(zName)!=sqlite3_value_bytes(pVal) ){
    zone_error(ctx, zFunc, pVal, SQLITE_MISUSE);     /* an embedded NUL */
    return 0;
  }
  pTz = p->aZone[p->iLast];
  if( pTz && strcmp(syncq_tz_name(pTz), zName)==0 ) return pTz;
  if( strcmp(zName, EASTERN_ZONE)==0 ) return eastern_zone(ctx, zFunc);
  for(i=0; i<TZ_CACHE_SIZE; i++){
    if( p->aZone[i] && strcmp(syncq_tz_name(p->aZone[i]), zName)==0 ){
      p->iLast = i;
      return p->aZone[i];
    }
  }
  rc = syncq_tz_load(zName, &pTz);
  if( rc!=SQLITE_OK ){
    zone_error(ctx, zFunc, pVal, rc);
    return 0;
  }
  i = p->iNext;
  syncq_tz_free(p->aZone[i]);
  p->aZone[i] = pTz;
  p->iLast = i;
  p->iNext = (i+1) % TZ_CACHE_SIZE;
  return pTz;
}

/* Report a timestamp argument that is not a valid instant. */
static void ts_error(sqlite3_context *ctx, const char *zFunc,
                     const char *zWhat, sqlite3_value *pVal){
  char *zMsg = 0;
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_INTEGER:
      zMsg = sqlite3_mprintf("%s: %s %lld", zFunc, zWhat,
                             sqlite3_value_int64(pVal));
      break;
    case SQLITE_FLOAT:
      zMsg = sqlite3_mprintf("%s: %s %!.15g", zFunc, zWhat,
                             sqlite3_value_double(pVal));
      break;
    case SQLITE_BLOB: {
      const unsigned char *a = sqlite3_value_blob(pVal);
      int nByte = sqlite3_value_bytes(pVal), i;
      char zHex[2*16+1];
      for(i=0; i<nByte && i<16; i++){
        zHex[2*i] = "0123456789abcdef"[a[i]>>4];
        zHex[2*i+1] = "0123456789abcdef"[a[i]&15];
      }
      zHex[2*i] = 0;
      zMsg = sqlite3_mprintf("%s: %s x'%s%s' (a blob, not text or a number)",
                             zFunc, zWhat, zHex, nByte>16 ? "..." : "");
      break;
    }
    default: {
      const char *z = (const char*)sqlite3_value_text(pVal);
      char *zQuoted = z ? quote_value(z, sqlite3_value_bytes(pVal)) : 0;
      if( zQuoted==0 ){
        sqlite3_result_error_nomem(ctx);
        return;
      }
      zMsg = sqlite3_mprintf("%s: %s %s", zFunc, zWhat, zQuoted);
      sqlite3_free(zQuoted);
      break;
    }
  }
  if( zMsg==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_error(ctx, zMsg, -1);
  sqlite3_free(zMsg);
}

/*
** Decode timestamp argument pVal.  Return SQLITE_OK with the instant,
** SQLITE_DONE for NULL, or SQLITE_ERROR after setting the error.
*/
static int ts_arg(sqlite3_context *ctx, const char *zFunc,
                  sqlite3_value *pVal, int64_t *pSec, int32_t *pUsec){
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_NULL:
      return SQLITE_DONE;
    case SQLITE_INTEGER: {
      sqlite3_int64 v = sqlite3_value_int64(pVal);
      if( v<SYNCQ_INSTANT_MIN || v>SYNCQ_INSTANT_MAX ) break;
      *pSec = v;
      *pUsec = 0;
      return SQLITE_OK;
    }
    case SQLITE_FLOAT:
      if( syncq_instant_from_real(sqlite3_value_double(pVal), pSec, pUsec)!=SQLITE_OK ){
        break;
      }
      return SQLITE_OK;
    case SQLITE_TEXT: {
      const char *z = (const char*)sqlite3_value_text(pVal);
      if( z==0 ){
        sqlite3_result_error_nomem(ctx);
        return SQLITE_ERROR;
      }
      if( syncq_parse_instant(z, sqlite3_value_bytes(pVal), pSec, pUsec)
          ==SQLITE_OK ){
        return SQLITE_OK;
      }
      ts_error(ctx, zFunc, "invalid timestamp", pVal);
      return SQLITE_ERROR;
    }
    default:
      ts_error(ctx, zFunc, "invalid timestamp", pVal);
      return SQLITE_ERROR;
  }
  ts_error(ctx, zFunc, "timestamp out of range:", pVal);
  return SQLITE_ERROR;
}

/* Set the result to the local date or wall time of t.usec in pTz. */
static void result_local(sqlite3_context *ctx, const char *zFunc,
                         sqlite3_value *pTs, const SyncqTz *pTz,
                         int64_t t, int32_t usec, int bDate, int flags){
  char zBuf[SYNCQ_WALL_BUFSZ];
  int offset, n = -1;
  if( syncq_tz_offset(pTz, t, &offset)==SQLITE_OK ){
    n = bDate ? syncq_format_date(zBuf, t, offset)
              : syncq_format_wall(zBuf, t, usec, offset, flags);
  }
  if( n<0 ){
    if( pTs ){
      ts_error(ctx, zFunc, "timestamp out of range:", pTs);
    }else{
      sqlite3_result_error(ctx, "current time out of range", -1);
    }
    return;
  }
  sqlite3_result_text(ctx, zBuf, n, SQLITE_TRANSIENT);
}

/* The current instant from the system clock. */
static int now_instant(sqlite3_context *ctx, int64_t *pSec, int32_t *pUsec){
  struct timespec ts;
  if( clock_gettime(CLOCK_REALTIME, &ts)!=0 ){
    sqlite3_result_error(ctx, "cannot read the system clock", -1);
    return SQLITE_ERROR;
  }
  *pSec = (int64_t)ts.tv_sec;
  *pUsec = (int32_t)(ts.tv_nsec/1000);
  return SQLITE_OK;
}

/*
** Shared body of the one- and two-argument functions: argv[0] is the
** instant, argv[1] (when nZoneArg) the zone; bDate picks the output.
*/
static void local_func(sqlite3_context *ctx, const char *zFunc,
                       int bZoneArg, int bDate, sqlite3_value **argv){
  const SyncqTz *pTz;
  int64_t t;
  int32_t usec;
  if( sqlite3_value_type(argv[0])==SQLITE_NULL
   || (bZoneArg && sqlite3_value_type(argv[1])==SQLITE_NULL) ){
    return;                             /* NULL in, NULL out */
  }
  pTz = bZoneArg ? named_zone(ctx, zFunc, argv[1]) : eastern_zone(ctx, zFunc);
  if( pTz==0 ) return;
  if( ts_arg(ctx, zFunc, argv[0], &t, &usec)!=SQLITE_OK ) return;
  result_local(ctx, zFunc, argv[0], pTz, t, usec, bDate, SYNCQ_FMT_TRIM);
}

/* eastern_date() and eastern_date(ts) */
static void eastern_date_func(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv){
  if( argc==0 ){
    const SyncqTz *pTz = eastern_zone(ctx, "eastern_date");
    int64_t t;
    int32_t usec;
    if( pTz==0 || now_instant(ctx, &t, &usec)!=SQLITE_OK ) return;
    result_local(ctx, "eastern_date", 0, pTz, t, usec, 1, SYNCQ_FMT_TRIM);
    return;
  }
  local_func(ctx, "eastern_date", 0, 1, argv);
}

/* eastern_now() */
static void eastern_now_func(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv){
  const SyncqTz *pTz = eastern_zone(ctx, "eastern_now");
  int64_t t;
  int32_t usec;
  (void)argc;
  (void)argv;
  if( pTz==0 || now_instant(ctx, &t, &usec)!=SQLITE_OK ) return;
  result_local(ctx, "eastern_now", 0, pTz, t, usec, 0, SYNCQ_FMT_USEC);
}

/* utc_to_eastern(ts) */
static void utc_to_eastern_func(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  (void)argc;
  local_func(ctx, "utc_to_eastern", 0, 0, argv);
}

/* zone_date(ts, zone) */
static void zone_date_func(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  (void)argc;
  local_func(ctx, "zone_date", 1, 1, argv);
}

/* zone_time(ts, zone) */
static void zone_time_func(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  (void)argc;
  local_func(ctx, "zone_time", 1, 0, argv);
}

/*
** Register the time functions on db.  On failure return the error code
** and, when pzErrMsg is not NULL, set *pzErrMsg to a message from
** sqlite3_mprintf().
*/
int syncq_time_register(sqlite3 *db, char **pzErrMsg){
  static const struct {
    const char *zName;
    int nArg;
    int bDeterministic;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "eastern_date",   0, 0, eastern_date_func },
    { "eastern_date",   1, 1, eastern_date_func },
    { "eastern_now",    0, 0, eastern_now_func },
    { "utc_to_eastern", 1, 1, utc_to_eastern_func },
    { "zone_date",      2, 1, zone_date_func },
    { "zone_time",      2, 1, zone_time_func },
  };
  TzCache *pCache;
  int rc = SQLITE_OK;
  size_t i;

  pCache = sqlite3_malloc64(sizeof(*pCache));
  if( pCache==0 ) return SQLITE_NOMEM;
  memset(pCache, 0, sizeof(*pCache));
  pCache->nRef = 1;
  for(i=0; i<sizeof(aFunc)/sizeof(aFunc[0]) && rc==SQLITE_OK; i++){
    int flags = SQLITE_UTF8 | SQLITE_INNOCUOUS
              | (aFunc[i].bDeterministic ? SQLITE_DETERMINISTIC : 0);
    pCache->nRef++;                     /* xDestroy runs even on failure */
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg, flags,
                                    pCache, aFunc[i].xFunc, 0, 0, cache_unref);
    if( rc!=SQLITE_OK && pzErrMsg ){
      *pzErrMsg = sqlite3_mprintf("cannot register %s(): %s",
                                  aFunc[i].zName, sqlite3_errmsg(db));
    }
  }
  cache_unref(pCache);
  return rc;
}
