/*
** tz.c - the syncq time zone engine (see tz.h for the interface).
**
** This file is compiled into the SQLite extension (with
** -DSYNCQ_SQLITE_EXTENSION), into the syncqd daemon and into the test
** tools (with plain <sqlite3.h>).  It uses SQLite only to allocate memory.
**
** A loaded zone is a table of transitions (the instants where the UTC
** offset changes, each with the offset from then on), the offset before
** the first transition, and optionally a POSIX TZ rule (the TZif footer)
** that gives the offset after the last transition:
**
**     America/New_York   ... 2037-11-01T06:00:00Z -> -18000
**                        then EST5EDT,M3.2.0,M11.1.0
**
** Lookups are a binary search over the table, or a direct computation of
** the rule's transitions in the years around the instant.  As in tzcode
** (and so in PostgreSQL), the rule takes over at its first change strictly
** after the file's last transition; until then the last transition's
** offset holds.  Slim files rely on this: America/Nuuk's last transition
** falls on the very instant its rule would start daylight time.
** Transitions that do not change the offset (an abbreviation or isdst
** change only) are dropped from the table at load time, so it lists exactly
** the instants where wall clocks jump; the time of the file's last
** transition is kept apart for the rule.
*/
#define _POSIX_C_SOURCE 200809L
#ifdef SYNCQ_SQLITE_EXTENSION
# include "sqlite3ext.h"
  SQLITE_EXTENSION_INIT3
#else
# include <sqlite3.h>
#endif
#include "tz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECS_PER_DAY 86400
#define TZ_FILE_MAX (1024*1024)      /* larger files are refused */
#define TZ_OFFSET_MAX 93599          /* |offset| must stay below 26 h */
#define TZ_RULE_HOUR_MAX 167         /* RFC 8536 rule times: -167..167 h */
#define TZ_PATH_MAX 4096

/* One end of a POSIX TZ rule: "Mm.w.d", "Jn" or "n", then "/time". */
typedef struct TzRuleDate TzRuleDate;
struct TzRuleDate {
  char cKind;        /* 'M' month/week/day, 'J' 1..365 no leap, 'D' 0..365 */
  int iMonth;        /* 'M': 1..12 */
  int iWeek;         /* 'M': 1..5, 5 means the last */
  int iWday;         /* 'M': 0 (Sunday)..6 */
  int iDay;          /* 'J': 1..365, 'D': 0..365 */
  int32_t nSecs;     /* local time of day of the change, may be <0 or >24h */
};

/* A POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0". */
typedef struct TzRule TzRule;
struct TzRule {
  int32_t stdOff;    /* seconds east of UTC in standard time */
  int32_t dstOff;    /* seconds east of UTC in daylight time */
  int bDst;          /* false: stdOff all year */
  TzRuleDate start;  /* change to dstOff, given in standard local time */
  TzRuleDate end;    /* change to stdOff, given in daylight local time */
};

struct SyncqTz {
  char *zName;       /* the name it was loaded as */
  int bBuiltin;      /* built from the tables in this file */
  int nTrans;        /* entries in aTrans[] and aOff[] */
  int64_t *aTrans;   /* transition instants, strictly ascending */
  int32_t *aOff;     /* aOff[i]: offset from aTrans[i] on */
  int32_t off0;      /* offset before aTrans[0] */
  int bRule;         /* rule gives the offset after the last transition */
  int bRuleFrom;     /* the file has transitions: rule starts after tRuleFrom */
  int64_t tRuleFrom; /* the file's last transition, kept or dropped */
  TzRule rule;
};

/*
** Civil dates ---------------------------------------------------------
**
** Days are counted from 1970-01-01 in the proleptic Gregorian calendar.
** The two conversions shift the year to start in March, so that the leap
** day is the last day of the shifted year, and count in 400-year eras of
** 146097 days.
*/
static int is_leap(int y){
  return (y%4==0 && y%100!=0) || y%400==0;
}

int syncq_days_in_month(int y, int m){
  static const unsigned char aDays[12] =
    { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if( m<1 || m>12 ) return 0;
  return m==2 && is_leap(y) ? 29 : aDays[m-1];
}

int64_t syncq_days_from_civil(int y, int m, int d){
  int64_t yy = (int64_t)y - (m<=2);
  int64_t era = (yy>=0 ? yy : yy-399) / 400;
  int64_t yoe = yy - era*400;                       /* 0..399 */
  int64_t doy = (153*((m+9)%12) + 2)/5 + d - 1;     /* 0..365 */
  int64_t doe = yoe*365 + yoe/4 - yoe/100 + doy;    /* 0..146096 */
  return era*146097 + doe - 719468;
}

/* Days since 0000-03-01 (z >= 0) to a date; unsigned 32-bit arithmetic
** is enough for every z of years 1..9999 and is the fast path. */
static void civil_from_z32(uint32_t z, int *pY, int *pM, int *pD){
  uint32_t era = z / 146097;
  uint32_t doe = z - era*146097;
  uint32_t yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365;
  uint32_t doy = doe - (365*yoe + yoe/4 - yoe/100);
  uint32_t mp = (5*doy + 2)/153;
  int m = (int)(mp<10 ? mp+3 : mp-9);
  *pY = (int)(yoe + era*400) + (m<=2);
  *pM = m;
  *pD = (int)(doy - (153*mp + 2)/5 + 1);
}

void syncq_civil_from_days(int64_t days, int *pY, int *pM, int *pD){
  int64_t z = days + 719468;
  int64_t era, doe;
  if( z>=0 && z<=(int64_t)146097*25000 ){
    civil_from_z32((uint32_t)z, pY, pM, pD);
    return;
  }
  era = (z>=0 ? z : z-146096) / 146097;
  doe = z - era*146097;
  civil_from_z32((uint32_t)doe, pY, pM, pD);
  *pY += (int)(era*400);
}

static int64_t floor_div(int64_t a, int64_t b){
  int64_t q = a/b;
  if( (a%b)!=0 && ((a<0)!=(b<0)) ) q--;
  return q;
}

/* 0 = Sunday .. 6 = Saturday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t days){
  return (int)(((days%7) + 7 + 4) % 7);
}

static int year_of(int64_t t){
  int y, m, d;
  syncq_civil_from_days(floor_div(t, SECS_PER_DAY), &y, &m, &d);
  return y;
}

/*
** POSIX TZ rules ------------------------------------------------------
*/

/* Local seconds (counted as if UTC) at which rule date p falls in year y. */
static int64_t rule_local_time(const TzRuleDate *p, int y){
  int64_t days;
  switch( p->cKind ){
    case 'J':
      days = syncq_days_from_civil(y, 1, 1) + p->iDay - 1
           + (is_leap(y) && p->iDay>=60);
      break;
    case 'D':
      days = syncq_days_from_civil(y, 1, 1) + p->iDay;
      break;
    default: {
      int64_t first = syncq_days_from_civil(y, p->iMonth, 1);
      int nDay = syncq_days_in_month(y, p->iMonth);
      int iDay = (p->iWday - weekday_of(first) + 7) % 7 + (p->iWeek-1)*7;
      while( iDay>=nDay ) iDay -= 7;
      days = first + iDay;
      break;
    }
  }
  return days*SECS_PER_DAY + p->nSecs;
}

/* A change of offset computed from a rule, ordered by (t, year, rank). */
typedef struct TzEvent TzEvent;
struct TzEvent {
  int64_t t;         /* UTC instant */
  int y;             /* rule year it belongs to */
  int iRank;         /* 0 start of daylight time, 1 end */
  int32_t off;       /* offset from t on */
};

static int event_after(const TzEvent *a, const TzEvent *b){
  if( a->t!=b->t ) return a->t > b->t;
  if( a->y!=b->y ) return a->y > b->y;
  return a->iRank > b->iRank;
}

/* The two events of rule pRule in year y, in aEv[0] and aEv[1]. */
static void rule_events(const TzRule *pRule, int y, TzEvent *aEv){
  aEv[0].t = rule_local_time(&pRule->start, y) - pRule->stdOff;
  aEv[0].y = y;
  aEv[0].iRank = 0;
  aEv[0].off = pRule->dstOff;
  aEv[1].t = rule_local_time(&pRule->end, y) - pRule->dstOff;
  aEv[1].y = y;
  aEv[1].iRank = 1;
  aEv[1].off = pRule->stdOff;
}

/* Keep in *pBest the latest event of year y at or before t that is
** after the zone's last transition. */
static void rule_scan(const SyncqTz *p, int y, int64_t t, TzEvent *pBest,
                      int *pbFound){
  TzEvent aEv[2];
  int i;
  rule_events(&p->rule, y, aEv);
  for(i=0; i<2; i++){
    if( aEv[i].t<=t && (!p->bRuleFrom || aEv[i].t>p->tRuleFrom)
     && (!*pbFound || event_after(&aEv[i], pBest)) ){
      *pBest = aEv[i];
      *pbFound = 1;
    }
  }
}

/*
** Offset of zone p at instant t, which is after its last transition: the
** latest rule event at or before t (and after the last transition) among
** the years around t, else the offset of the last transition.  Rule times
** may reach a week past the end of their year, so the neighbouring years
** are always looked at.
*/
static int32_t rule_offset(const SyncqTz *p, int64_t t){
  int32_t lastOff = p->nTrans>0 ? p->aOff[p->nTrans-1] : p->off0;
  TzEvent best;
  int bFound = 0;
  int y0;
  if( !p->rule.bDst ) return p->bRuleFrom ? lastOff : p->rule.stdOff;
  y0 = year_of(t + p->rule.stdOff);
  rule_scan(p, y0-1, t, &best, &bFound);
  rule_scan(p, y0, t, &best, &bFound);
  rule_scan(p, y0+1, t, &best, &bFound);
  if( !bFound ){
    /* Both changes of year y0-1 fall after t: only for rules that put
    ** them in the last days of the year. */
    rule_scan(p, y0-2, t, &best, &bFound);
  }
  if( bFound ) return best.off;
  return p->bRuleFrom ? lastOff : p->rule.stdOff;
}

/* Parse a number of 1..nMax digits; return its end or NULL. */
static const char *parse_num(const char *z, const char *zEnd, int nMax,
                             int *pVal){
  int v = 0, n = 0;
  while( z<zEnd && *z>='0' && *z<='9' && n<nMax ){
    v = v*10 + (*z - '0');
    z++;
    n++;
  }
  if( n==0 ) return 0;
  *pVal = v;
  return z;
}

/*
** Parse "[+-]hh[:mm[:ss]]" with hh in 0..nHourMax into seconds, POSIX
** sign as written (positive west for offsets; the caller negates).
*/
static const char *parse_hms(const char *z, const char *zEnd, int nHourMax,
                             int32_t *pSecs){
  int neg = 0, h = 0, m = 0, s = 0;
  if( z<zEnd && (*z=='+' || *z=='-') ){
    neg = *z=='-';
    z++;
  }
  z = parse_num(z, zEnd, 3, &h);
  if( z==0 || h>nHourMax ) return 0;
  if( z<zEnd && *z==':' ){
    z = parse_num(z+1, zEnd, 2, &m);
    if( z==0 || m>59 ) return 0;
    if( z<zEnd && *z==':' ){
      z = parse_num(z+1, zEnd, 2, &s);
      if( z==0 || s>59 ) return 0;
    }
  }
  *pSecs = (int32_t)((h*3600 + m*60 + s) * (neg ? -1 : 1));
  return z;
}

/* Parse a zone abbreviation: 3 or more letters, or <...> quoted. */
static const char *parse_abbrev(const char *z, const char *zEnd){
  const char *zStart;
  if( z<zEnd && *z=='<' ){
    zStart = ++z;
    while( z<zEnd && ((*z>='A' && *z<='Z') || (*z>='a' && *z<='z')
                      || (*z>='0' && *z<='9') || *z=='+' || *z=='-') ){
      z++;
    }
    if( z>=zEnd || *z!='>' || z-zStart<3 ) return 0;
    return z+1;
  }
  zStart = z;
  while( z<zEnd && ((*z>='A' && *z<='Z') || (*z>='a' && *z<='z')) ) z++;
  return z-zStart<3 ? 0 : z;
}

/* Parse a UTC offset in POSIX form and turn it into seconds east. */
static const char *parse_posix_offset(const char *z, const char *zEnd,
                                      int32_t *pOff){
  int32_t secs;
  z = parse_hms(z, zEnd, 24, &secs);
  if( z==0 ) return 0;
  *pOff = -secs;
  return z;
}

/* Parse ",date[/time]" (the leading comma already consumed). */
static const char *parse_rule_date(const char *z, const char *zEnd,
                                   TzRuleDate *p){
  memset(p, 0, sizeof(*p));
  if( z<zEnd && *z=='M' ){
    p->cKind = 'M';
    z = parse_num(z+1, zEnd, 2, &p->iMonth);
    if( z==0 || p->iMonth<1 || p->iMonth>12 || z>=zEnd || *z!='.' ) return 0;
    z = parse_num(z+1, zEnd, 1, &p->iWeek);
    if( z==0 || p->iWeek<1 || p->iWeek>5 || z>=zEnd || *z!='.' ) return 0;
    z = parse_num(z+1, zEnd, 1, &p->iWday);
    if( z==0 || p->iWday>6 ) return 0;
  }else if( z<zEnd && *z=='J' ){
    p->cKind = 'J';
    z = parse_num(z+1, zEnd, 3, &p->iDay);
    if( z==0 || p->iDay<1 || p->iDay>365 ) return 0;
  }else{
    p->cKind = 'D';
    z = parse_num(z, zEnd, 3, &p->iDay);
    if( z==0 || p->iDay>365 ) return 0;
  }
  p->nSecs = 2*3600;
  if( z<zEnd && *z=='/' ){
    z = parse_hms(z+1, zEnd, TZ_RULE_HOUR_MAX, &p->nSecs);
  }
  return z;
}

/*
** Parse a POSIX TZ string (a TZif footer) into *pRule.  Return SQLITE_OK
** or SQLITE_CORRUPT.  A daylight name without a rule gets the US rule, as
** in tzcode.
*/
static int parse_posix_tz(const char *z, const char *zEnd, TzRule *pRule){
  static const char zDefault[] = "M3.2.0,M11.1.0";
  memset(pRule, 0, sizeof(*pRule));
  z = parse_abbrev(z, zEnd);
  if( z==0 ) return SQLITE_CORRUPT;
  z = parse_posix_offset(z, zEnd, &pRule->stdOff);
  if( z==0 ) return SQLITE_CORRUPT;
  if( z<zEnd ){
    pRule->bDst = 1;
    z = parse_abbrev(z, zEnd);
    if( z==0 ) return SQLITE_CORRUPT;
    pRule->dstOff = pRule->stdOff + 3600;
    if( z<zEnd && *z!=',' ){
      z = parse_posix_offset(z, zEnd, &pRule->dstOff);
      if( z==0 ) return SQLITE_CORRUPT;
    }
    if( z<zEnd ){
      if( *z!=',' ) return SQLITE_CORRUPT;
      z = parse_rule_date(z+1, zEnd, &pRule->start);
      if( z==0 || z>=zEnd || *z!=',' ) return SQLITE_CORRUPT;
      z = parse_rule_date(z+1, zEnd, &pRule->end);
      if( z==0 ) return SQLITE_CORRUPT;
    }else{
      const char *zD = zDefault, *zDEnd = zDefault + sizeof(zDefault) - 1;
      zD = parse_rule_date(zD, zDEnd, &pRule->start);
      parse_rule_date(zD+1, zDEnd, &pRule->end);
    }
  }
  if( z!=zEnd ) return SQLITE_CORRUPT;
  if( pRule->stdOff< -TZ_OFFSET_MAX || pRule->stdOff>TZ_OFFSET_MAX
   || pRule->dstOff< -TZ_OFFSET_MAX || pRule->dstOff>TZ_OFFSET_MAX ){
    return SQLITE_CORRUPT;
  }
  return SQLITE_OK;
}

/*
** Zone objects --------------------------------------------------------
*/

/* Allocate a zone named zName with room for nTrans transitions. */
static SyncqTz *tz_alloc(const char *zName, int nTrans){
  size_t nName = strlen(zName) + 1;
  sqlite3_uint64 nByte = sizeof(SyncqTz) + nName
                + (sqlite3_uint64)nTrans*(sizeof(int64_t) + sizeof(int32_t));
  SyncqTz *p = sqlite3_malloc64(nByte);
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->aTrans = (int64_t*)&p[1];
  p->aOff = (int32_t*)&p->aTrans[nTrans];
  p->zName = (char*)&p->aOff[nTrans];
  memcpy(p->zName, zName, nName);
  return p;
}

/* Append a transition unless it leaves the offset as it was. */
static void tz_push(SyncqTz *p, int64_t t, int32_t off){
  int32_t prev = p->nTrans>0 ? p->aOff[p->nTrans-1] : p->off0;
  p->bRuleFrom = 1;
  p->tRuleFrom = t;
  if( t<=SYNCQ_INSTANT_MIN ){
    p->off0 = off;
    return;
  }
  if( off==prev ) return;
  p->aTrans[p->nTrans] = t;
  p->aOff[p->nTrans] = off;
  p->nTrans++;
}

void syncq_tz_free(SyncqTz *pTz){
  sqlite3_free(pTz);
}

const char *syncq_tz_name(const SyncqTz *pTz){
  return pTz->zName;
}

int syncq_tz_is_builtin(const SyncqTz *pTz){
  return pTz->bBuiltin;
}

/*
** TZif files (RFC 8536) ----------------------------------------------
*/
typedef struct TzifHeader TzifHeader;
struct TzifHeader {
  int iVersion;                   /* 1, 2, 3, ... */
  uint32_t nIsUt, nIsStd, nLeap, nTime, nType, nChar;
};

#define TZIF_HEADER_SIZE 44

static uint32_t get_be32(const unsigned char *a){
  return ((uint32_t)a[0]<<24) | ((uint32_t)a[1]<<16)
       | ((uint32_t)a[2]<<8) | (uint32_t)a[3];
}

static int64_t get_be64(const unsigned char *a){
  uint64_t v = ((uint64_t)get_be32(a)<<32) | get_be32(a+4);
  return (int64_t)v;
}

/* Size in bytes of the data block that follows header h. */
static uint64_t tzif_block_size(const TzifHeader *h, int nTimeSize){
  return (uint64_t)h->nTime*(uint64_t)(nTimeSize+1)
       + (uint64_t)h->nType*6
       + (uint64_t)h->nChar
       + (uint64_t)h->nLeap*(uint64_t)(nTimeSize+4)
       + (uint64_t)h->nIsStd
       + (uint64_t)h->nIsUt;
}

/* Read and check the header at a[iOff..]; the block must fit in nData. */
static int tzif_header(const unsigned char *a, size_t nData, size_t iOff,
                       int nTimeSize, TzifHeader *h){
  if( nData<TZIF_HEADER_SIZE || iOff>nData-TZIF_HEADER_SIZE ){
    return SQLITE_CORRUPT;
  }
  a += iOff;
  if( memcmp(a, "TZif", 4)!=0 ) return SQLITE_CORRUPT;
  if( a[4]==0 ){
    h->iVersion = 1;
  }else if( a[4]>='2' && a[4]<='9' ){
    h->iVersion = a[4] - '0';
  }else{
    return SQLITE_CORRUPT;
  }
  h->nIsUt = get_be32(a+20);
  h->nIsStd = get_be32(a+24);
  h->nLeap = get_be32(a+28);
  h->nTime = get_be32(a+32);
  h->nType = get_be32(a+36);
  h->nChar = get_be32(a+40);
  if( h->nType==0 || h->nType>256 || h->nChar==0
   || (h->nIsUt!=0 && h->nIsUt!=h->nType)
   || (h->nIsStd!=0 && h->nIsStd!=h->nType)
   || h->nTime>(uint32_t)TZ_FILE_MAX ){
    return SQLITE_CORRUPT;
  }
  if( tzif_block_size(h, nTimeSize) > nData - iOff - TZIF_HEADER_SIZE ){
    return SQLITE_CORRUPT;
  }
  return SQLITE_OK;
}

/*
** Build a zone from the data block after header h at a[iOff..] and the
** footer z[0..nFooter) (nFooter<0: no footer).
*/
static int tzif_build(const char *zName, const unsigned char *a,
                      size_t iOff, const TzifHeader *h, int nTimeSize,
                      const char *zFooter, int nFooter, SyncqTz **ppTz){
  const unsigned char *aTime = a + iOff + TZIF_HEADER_SIZE;
  const unsigned char *aIdx = aTime + (size_t)h->nTime*nTimeSize;
  const unsigned char *aType = aIdx + h->nTime;
  SyncqTz *p;
  uint32_t i;
  int64_t prev = 0;

  if( h->nLeap>0 ){
    /* "right/" zones count leap seconds in their instants; not supported */
    return SQLITE_CORRUPT;
  }
  for(i=0; i<h->nType; i++){
    int32_t off = (int32_t)get_be32(aType + 6*i);
    if( off< -TZ_OFFSET_MAX || off>TZ_OFFSET_MAX
     || aType[6*i+4]>1 || aType[6*i+5]>=h->nChar ){
      return SQLITE_CORRUPT;
    }
  }
  for(i=0; i<h->nTime; i++){
    int64_t t = nTimeSize==8 ? get_be64(aTime + 8*(size_t)i)
                             : (int64_t)(int32_t)get_be32(aTime + 4*(size_t)i);
    if( (i>0 && t<=prev) || aIdx[i]>=h->nType ) return SQLITE_CORRUPT;
    prev = t;
  }
  p = tz_alloc(zName, (int)h->nTime);
  if( p==0 ) return SQLITE_NOMEM;
  p->off0 = (int32_t)get_be32(aType);
  for(i=0; i<h->nTime; i++){
    int64_t t = nTimeSize==8 ? get_be64(aTime + 8*(size_t)i)
                             : (int64_t)(int32_t)get_be32(aTime + 4*(size_t)i);
    tz_push(p, t, (int32_t)get_be32(aType + 6*(size_t)aIdx[i]));
  }
  if( nFooter>0 ){
    if( parse_posix_tz(zFooter, zFooter+nFooter, &p->rule)!=SQLITE_OK ){
      syncq_tz_free(p);
      return SQLITE_CORRUPT;
    }
    p->bRule = 1;
  }
  *ppTz = p;
  return SQLITE_OK;
}

/* Parse a whole TZif file a[0..nData) into a zone. */
static int tzif_parse(const char *zName, const unsigned char *a,
                      size_t nData, SyncqTz **ppTz){
  TzifHeader h;
  size_t iOff2, iFooter, iEnd;
  int rc = tzif_header(a, nData, 0, 4, &h);
  if( rc!=SQLITE_OK ) return rc;
  if( h.iVersion==1 ){
    return tzif_build(zName, a, 0, &h, 4, 0, -1, ppTz);
  }
  /* Version 2+: skip the 32-bit block, use the 64-bit one and footer. */
  iOff2 = TZIF_HEADER_SIZE + (size_t)tzif_block_size(&h, 4);
  rc = tzif_header(a, nData, iOff2, 8, &h);
  if( rc!=SQLITE_OK ) return rc;
  iFooter = iOff2 + TZIF_HEADER_SIZE + (size_t)tzif_block_size(&h, 8);
  if( iFooter>=nData || a[iFooter]!='\n' ) return SQLITE_CORRUPT;
  for(iEnd=iFooter+1; iEnd<nData && a[iEnd]!='\n'; iEnd++){
    if( a[iEnd]==0 ) return SQLITE_CORRUPT;
  }
  if( iEnd>=nData ) return SQLITE_CORRUPT;
  return tzif_build(zName, a, iOff2, &h, 8, (const char*)a + iFooter + 1,
                    (int)(iEnd - iFooter - 1), ppTz);
}

/*
** Zone files ----------------------------------------------------------
*/

/* True if zName may be looked up: [A-Za-z0-9_+-/], relative, no "..". */
static int tz_name_ok(const char *zName){
  size_t i, n = strlen(zName);
  if( n==0 || n>SYNCQ_TZ_NAME_MAX || zName[0]=='/' || zName[n-1]=='/' ){
    return 0;
  }
  for(i=0; i<n; i++){
    char c = zName[i];
    if( !((c>='A' && c<='Z') || (c>='a' && c<='z') || (c>='0' && c<='9')
          || c=='_' || c=='-' || c=='+' || c=='/') ){
      return 0;
    }
    if( c=='/' && zName[i+1]=='/' ) return 0;
  }
  return strstr(zName, "..")==0;
}

static int ascii_casecmp(const char *a, const char *b){
  for(;;){
    int ca = (unsigned char)*a++, cb = (unsigned char)*b++;
    if( ca>='A' && ca<='Z' ) ca += 'a' - 'A';
    if( cb>='A' && cb<='Z' ) cb += 'a' - 'A';
    if( ca!=cb || ca==0 ) return ca - cb;
  }
}

/*
** Find zName under zDir ignoring case, one path component at a time (as
** PostgreSQL does), writing the path found into zPath.  Return 1 if found.
*/
static int tz_find_nocase(const char *zName, char *zPath, size_t nPath){
  size_t nUsed = strlen(zPath);
  const char *z = zName;
  while( *z ){
    const char *zSlash = strchr(z, '/');
    size_t nComp = zSlash ? (size_t)(zSlash - z) : strlen(z);
    char zComp[SYNCQ_TZ_NAME_MAX+1];
    struct dirent *pEnt;
    DIR *pDir;
    int bFound = 0;
    memcpy(zComp, z, nComp);
    zComp[nComp] = 0;
    pDir = opendir(zPath);
    if( pDir==0 ) return 0;
    while( (pEnt = readdir(pDir))!=0 ){
      size_t nEnt = strlen(pEnt->d_name);
      if( ascii_casecmp(pEnt->d_name, zComp)==0 && nUsed+1+nEnt<nPath ){
        zPath[nUsed++] = '/';
        memcpy(zPath+nUsed, pEnt->d_name, nEnt+1);
        nUsed += nEnt;
        bFound = 1;
        break;
      }
    }
    closedir(pDir);
    if( !bFound ) return 0;
    z += nComp;
    if( *z=='/' ) z++;
  }
  return 1;
}

/* Read the whole regular file zPath into memory from sqlite3_malloc64. */
static int tz_read_path(const char *zPath, unsigned char **paData,
                        size_t *pnData){
  struct stat st;
  unsigned char *a;
  size_t nRead = 0;
  int fd = open(zPath, O_RDONLY|O_CLOEXEC|O_NONBLOCK);   /* not on a FIFO */
  if( fd<0 ){
    return (errno==ENOENT || errno==ENOTDIR) ? SQLITE_NOTFOUND : SQLITE_IOERR;
  }
  if( fstat(fd, &st)!=0 ){
    close(fd);
    return SQLITE_IOERR;
  }
  if( !S_ISREG(st.st_mode) ){
    close(fd);
    return S_ISDIR(st.st_mode) ? SQLITE_NOTFOUND : SQLITE_IOERR;
  }
  if( st.st_size>TZ_FILE_MAX ){
    close(fd);
    return SQLITE_CORRUPT;
  }
  a = sqlite3_malloc64((sqlite3_uint64)st.st_size + 1);
  if( a==0 ){
    close(fd);
    return SQLITE_NOMEM;
  }
  while( nRead<(size_t)st.st_size ){
    ssize_t n = read(fd, a+nRead, (size_t)st.st_size - nRead);
    if( n<0 && errno==EINTR ) continue;
    if( n<=0 ) break;
    nRead += (size_t)n;
  }
  close(fd);
  *paData = a;
  *pnData = nRead;
  return SQLITE_OK;
}

/* Load zone zName (already validated) from the time zone directory. */
static int tz_load_file(const char *zName, SyncqTz **ppTz){
  const char *zDir = getenv("TZDIR");
  char zPath[TZ_PATH_MAX + SYNCQ_TZ_NAME_MAX + 2];
  unsigned char *aData = 0;
  size_t nData = 0, nDir;
  int rc;
  if( zDir==0 || zDir[0]==0 ) zDir = "/usr/share/zoneinfo";
  nDir = strlen(zDir);
  if( nDir>TZ_PATH_MAX ) return SQLITE_IOERR;
  memcpy(zPath, zDir, nDir);
  zPath[nDir] = '/';
  memcpy(zPath+nDir+1, zName, strlen(zName)+1);
  rc = tz_read_path(zPath, &aData, &nData);
  if( rc==SQLITE_NOTFOUND ){
    zPath[nDir] = 0;
    if( tz_find_nocase(zName, zPath, sizeof(zPath)) ){
      rc = tz_read_path(zPath, &aData, &nData);
    }
  }
  if( rc!=SQLITE_OK ) return rc;
  rc = tzif_parse(zName, aData, nData, ppTz);
  sqlite3_free(aData);
  return rc;
}

/*
** Built-in zones ------------------------------------------------------
**
** America/New_York from its full history (tzdata "northamerica": LMT
** until 1883, US rules 1918-1919, New York City rules 1920-1966 with
** the war time of 1942-1945, US rules from 1967), so that it is exact at
** every instant without a time zone database.  All changes are at 02:00
** local time; from 2007 on the rule "EST5EDT,M3.2.0,M11.1.0" holds.
*/
#define NY_LMT       (-17762)              /* -4:56:02 */
#define NY_EST       (-5*3600)
#define NY_EDT       (-4*3600)
#define NY_LMT_END   (-2717650800LL)       /* 1883-11-18T17:00:00Z */

#define DAY_FIXED    0                     /* day iDay of the month */
#define DAY_LASTSUN  1                     /* last Sunday */
#define DAY_SUNGE    2                     /* first Sunday on or after iDay */

typedef struct NyDay NyDay;
struct NyDay { unsigned char iMonth, eKind, iDay; };

static const struct NyRule {
  short y0, y1;           /* years the rule is in force */
  NyDay start, end;       /* first and last day of daylight time */
  unsigned char nEndYear; /* daylight time ends nEndYear years later */
} aNyRule[] = {
  { 1918, 1920, {  3, DAY_LASTSUN, 0 }, { 10, DAY_LASTSUN, 0 }, 0 },
  { 1921, 1941, {  4, DAY_LASTSUN, 0 }, {  9, DAY_LASTSUN, 0 }, 0 },
  { 1942, 1942, {  2, DAY_FIXED,   9 }, {  9, DAY_LASTSUN, 0 }, 3 },
  { 1946, 1954, {  4, DAY_LASTSUN, 0 }, {  9, DAY_LASTSUN, 0 }, 0 },
  { 1955, 1973, {  4, DAY_LASTSUN, 0 }, { 10, DAY_LASTSUN, 0 }, 0 },
  { 1974, 1974, {  1, DAY_FIXED,   6 }, { 10, DAY_LASTSUN, 0 }, 0 },
  { 1975, 1975, {  2, DAY_FIXED,  23 }, { 10, DAY_LASTSUN, 0 }, 0 },
  { 1976, 1986, {  4, DAY_LASTSUN, 0 }, { 10, DAY_LASTSUN, 0 }, 0 },
  { 1987, 2006, {  4, DAY_SUNGE,   1 }, { 10, DAY_LASTSUN, 0 }, 0 },
  { 2007, 2007, {  3, DAY_SUNGE,   8 }, { 11, DAY_SUNGE,   1 }, 0 },
};

static int64_t ny_day(const NyDay *p, int y){
  int64_t first = syncq_days_from_civil(y, p->iMonth, 1);
  int64_t d;
  if( p->eKind==DAY_FIXED ) return first + p->iDay - 1;
  if( p->eKind==DAY_SUNGE ){
    d = first + p->iDay - 1;
    return d + (7 - weekday_of(d)) % 7;
  }
  d = first + syncq_days_in_month(y, p->iMonth) - 1;
  return d - weekday_of(d);
}

static int tz_builtin_new_york(const char *zName, SyncqTz **ppTz){
  static const char zRule[] = "EST5EDT,M3.2.0,M11.1.0";
  int nTrans = 1, i, y;
  SyncqTz *p;
  for(i=0; i<(int)(sizeof(aNyRule)/sizeof(aNyRule[0])); i++){
    nTrans += 2*(aNyRule[i].y1 - aNyRule[i].y0 + 1);
  }
  p = tz_alloc(zName, nTrans);
  if( p==0 ) return SQLITE_NOMEM;
  p->bBuiltin = 1;
  p->off0 = NY_LMT;
  tz_push(p, NY_LMT_END, NY_EST);
  for(i=0; i<(int)(sizeof(aNyRule)/sizeof(aNyRule[0])); i++){
    const struct NyRule *r = &aNyRule[i];
    for(y=r->y0; y<=r->y1; y++){
      int64_t tStart = ny_day(&r->start, y)*SECS_PER_DAY + 2*3600 - NY_EST;
      int64_t tEnd = ny_day(&r->end, y + r->nEndYear)*SECS_PER_DAY
                   + 2*3600 - NY_EDT;
      tz_push(p, tStart, NY_EDT);
      tz_push(p, tEnd, NY_EST);
    }
  }
  if( parse_posix_tz(zRule, zRule + sizeof(zRule) - 1, &p->rule)!=SQLITE_OK ){
    syncq_tz_free(p);
    return SQLITE_CORRUPT;
  }
  p->bRule = 1;
  *ppTz = p;
  return SQLITE_OK;
}

static int tz_builtin_utc(const char *zName, SyncqTz **ppTz){
  SyncqTz *p = tz_alloc(zName, 0);
  if( p==0 ) return SQLITE_NOMEM;
  p->bBuiltin = 1;
  *ppTz = p;
  return SQLITE_OK;
}

static int name_in(const char *zName, const char *const *azList){
  for(; *azList; azList++){
    if( ascii_casecmp(zName, *azList)==0 ) return 1;
  }
  return 0;
}

static const char *const azUtcNames[] = {
  "UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Zulu", "Etc/Zulu",
  "Universal", "Etc/Universal", 0
};
static const char *const azNewYorkNames[] = {
  "America/New_York", "US/Eastern", 0
};

int syncq_tz_load(const char *zName, SyncqTz **ppTz){
  int rc;
  *ppTz = 0;
  if( zName==0 || !tz_name_ok(zName) ) return SQLITE_MISUSE;
  if( name_in(zName, azUtcNames) ) return tz_builtin_utc(zName, ppTz);
  rc = tz_load_file(zName, ppTz);
  if( (rc==SQLITE_NOTFOUND || rc==SQLITE_IOERR)
   && name_in(zName, azNewYorkNames) ){
    rc = tz_builtin_new_york(zName, ppTz);
  }
  return rc;
}

const char *syncq_tz_errstr(int rc){
  switch( rc ){
    case SQLITE_OK:       return "not an error";
    case SQLITE_NOMEM:    return "out of memory";
    case SQLITE_NOTFOUND: return "unknown time zone";
    case SQLITE_MISUSE:   return "invalid time zone name";
    case SQLITE_CORRUPT:  return "invalid or unsupported time zone file";
    case SQLITE_IOERR:    return "cannot read time zone file";
    case SQLITE_RANGE:    return "instant out of range";
    default:              return "time zone error";
  }
}

/*
** Lookups -------------------------------------------------------------
*/
int syncq_tz_offset(const SyncqTz *pTz, int64_t t, int *pOffset){
  int n = pTz->nTrans;
  if( t<SYNCQ_INSTANT_MIN || t>SYNCQ_INSTANT_MAX ) return SQLITE_RANGE;
  if( pTz->bRule && (!pTz->bRuleFrom || t>pTz->tRuleFrom) ){
    *pOffset = rule_offset(pTz, t);
  }else if( n==0 || t<pTz->aTrans[0] ){
    *pOffset = pTz->off0;
  }else if( t>=pTz->aTrans[n-1] ){
    *pOffset = pTz->aOff[n-1];
  }else{
    /* Last aTrans[i] <= t, without branches the CPU could mispredict */
    const int64_t *a = pTz->aTrans;
    int nLeft = n;
    while( nLeft>1 ){
      int nHalf = nLeft/2;
      a = a[nHalf]<=t ? a+nHalf : a;
      nLeft -= nHalf;
    }
    *pOffset = pTz->aOff[a - pTz->aTrans];
  }
  return SQLITE_OK;
}

/* True if the offset changes at instant t (t-1 has another offset). */
static int tz_changes_at(const SyncqTz *pTz, int64_t t){
  int a, b;
  if( syncq_tz_offset(pTz, t-1, &a)!=SQLITE_OK ) return 0;
  if( syncq_tz_offset(pTz, t, &b)!=SQLITE_OK ) return 0;
  return a!=b;
}

#define RULE_SCAN_YEARS 6    /* a changing rule changes within two years */

int syncq_tz_next_transition(const SyncqTz *pTz, int64_t after,
                             int64_t *pNext){
  TzEvent aEv[2*RULE_SCAN_YEARS];
  int n = pTz->nTrans;
  int64_t lo;
  int y0, i, j;
  if( after<SYNCQ_INSTANT_MIN ) after = SYNCQ_INSTANT_MIN;
  if( after>=SYNCQ_INSTANT_MAX ) return SQLITE_DONE;
  if( n>0 && after<pTz->aTrans[n-1] ){
    i = 0;                              /* first aTrans[i] > after */
    j = n-1;
    while( i<j ){
      int mid = i + (j-i)/2;
      if( pTz->aTrans[mid]>after ) j = mid; else i = mid+1;
    }
    for(; i<n; i++){
      if( tz_changes_at(pTz, pTz->aTrans[i]) ){
        *pNext = pTz->aTrans[i];
        return SQLITE_OK;
      }
    }
  }
  if( !pTz->bRule || !pTz->rule.bDst ) return SQLITE_DONE;
  lo = pTz->bRuleFrom && pTz->tRuleFrom>after ? pTz->tRuleFrom : after;
  y0 = year_of(lo + pTz->rule.stdOff) - 1;
  for(i=0; i<RULE_SCAN_YEARS; i++){
    rule_events(&pTz->rule, y0+i, &aEv[2*i]);
  }
  for(i=1; i<2*RULE_SCAN_YEARS; i++){   /* insertion sort */
    TzEvent x = aEv[i];
    for(j=i; j>0 && event_after(&aEv[j-1], &x); j--) aEv[j] = aEv[j-1];
    aEv[j] = x;
  }
  for(i=0; i<2*RULE_SCAN_YEARS; i++){
    if( aEv[i].t>lo && aEv[i].t<=SYNCQ_INSTANT_MAX
     && tz_changes_at(pTz, aEv[i].t) ){
      *pNext = aEv[i].t;
      return SQLITE_OK;
    }
  }
  return SQLITE_DONE;
}

/*
** ISO-8601 instants ---------------------------------------------------
*/
static int is_space(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r' || c=='\f' || c=='\v';
}

/* Exactly n digits at z[*pi..]; advance *pi.  Return the value or -1. */
static int get_digits(const char *z, int nZ, int *pi, int n){
  int v = 0, i = *pi, k;
  if( nZ-i<n ) return -1;
  for(k=0; k<n; k++){
    char c = z[i+k];
    if( c<'0' || c>'9' ) return -1;
    v = v*10 + (c - '0');
  }
  *pi = i + n;
  return v;
}

/*
** Parse "YYYY-MM-DD[( |T)HH:MM[:SS[.f]][ ][Z|(+|-)HH[[:]MM[:SS]]]]" with
** optional surrounding white space.  Fractions of 1..9 digits are rounded
** to microseconds, ties to even (PostgreSQL uses rint()).  No offset
** means UTC.  Return SQLITE_OK or SQLITE_ERROR.
*/
int syncq_parse_instant(const char *z, int n, int64_t *pSec, int32_t *pUsec){
  int i = 0, y, mo, d, h = 0, mi = 0, s = 0;
  int32_t usec = 0;
  int64_t off = 0, t;
  if( z==0 ) return SQLITE_ERROR;
  if( n<0 ) n = (int)strlen(z);
  while( i<n && is_space(z[i]) ) i++;
  if( (y = get_digits(z, n, &i, 4))<1 || i>=n || z[i++]!='-'
   || (mo = get_digits(z, n, &i, 2))<1 || mo>12 || i>=n || z[i++]!='-'
   || (d = get_digits(z, n, &i, 2))<1 || d>syncq_days_in_month(y, mo) ){
    return SQLITE_ERROR;
  }
  if( i<n && (z[i]=='T' || z[i]=='t' || z[i]==' ') ){
    int j = i+1;
    if( z[i]==' ' ){
      while( j<n && is_space(z[j]) ) j++;
    }
    if( j<n && z[j]>='0' && z[j]<='9' ){
      i = j;
      if( (h = get_digits(z, n, &i, 2))<0 || h>23 || i>=n || z[i++]!=':'
       || (mi = get_digits(z, n, &i, 2))<0 || mi>59 ){
        return SQLITE_ERROR;
      }
      if( i<n && z[i]==':' ){
        i++;
        if( (s = get_digits(z, n, &i, 2))<0 || s>59 ) return SQLITE_ERROR;
        if( i<n && z[i]=='.' ){
          int nDigit = 0, bRest = 0, iRound = 0;
          for(i++; i<n && z[i]>='0' && z[i]<='9'; i++, nDigit++){
            if( nDigit<6 ){
              usec = usec*10 + (z[i] - '0');
            }else if( nDigit==6 ){
              iRound = z[i] - '0';
            }else if( z[i]!='0' ){
              bRest = 1;
            }
          }
          if( nDigit<1 || nDigit>9 ) return SQLITE_ERROR;
          for(; nDigit<6; nDigit++) usec *= 10;
          if( iRound>5 || (iRound==5 && (bRest || (usec&1))) ) usec++;
        }
      }
      j = i;                            /* spaces may precede an offset */
      while( j<n && is_space(z[j]) ) j++;
      if( j<n && (z[j]=='Z' || z[j]=='z' || z[j]=='+' || z[j]=='-') ) i = j;
      if( i<n && (z[i]=='Z' || z[i]=='z') ){
        i++;
      }else if( i<n && (z[i]=='+' || z[i]=='-') ){
        int neg = z[i++]=='-', oh, om = 0, os = 0;
        if( (oh = get_digits(z, n, &i, 2))<0 || oh>15 ) return SQLITE_ERROR;
        if( i<n && z[i]==':' ){
          i++;
          if( (om = get_digits(z, n, &i, 2))<0 || om>59 ) return SQLITE_ERROR;
          if( i<n && z[i]==':' ){
            i++;
            if( (os = get_digits(z, n, &i, 2))<0 || os>59 ) return SQLITE_ERROR;
          }
        }else if( i<n && z[i]>='0' && z[i]<='9' ){
          if( (om = get_digits(z, n, &i, 2))<0 || om>59 ) return SQLITE_ERROR;
        }
        off = (int64_t)oh*3600 + om*60 + os;
        if( neg ) off = -off;
      }
    }
  }
  while( i<n && is_space(z[i]) ) i++;
  if( i!=n ) return SQLITE_ERROR;
  t = syncq_days_from_civil(y, mo, d)*SECS_PER_DAY + h*3600 + mi*60 + s - off;
  if( usec>=1000000 ){
    usec -= 1000000;
    t++;
  }
  *pSec = t;
  *pUsec = usec;
  return SQLITE_OK;
}

/*
** Unix seconds as a double to an instant, rounded to the microsecond as
** PostgreSQL's to_timestamp(double precision) does it: microseconds since
** 2000-01-01 through rint(), i.e. ties to even.  SQLITE_RANGE outside the
** supported instants (and for NaN).
*/
int syncq_instant_from_real(double r, int64_t *pSec, int32_t *pUsec){
  const int64_t pgEpoch = 946684800;
  double x, frac;
  int64_t i, us;
  if( !(r>=(double)SYNCQ_INSTANT_MIN && r<=(double)SYNCQ_INSTANT_MAX) ){
    return SQLITE_RANGE;                /* also NaN */
  }
  x = (r - (double)pgEpoch) * 1e6;
  i = (int64_t)x;
  frac = x - (double)i;
  if( frac>0.5 || (frac==0.5 && (i&1)) ){
    i++;
  }else if( frac< -0.5 || (frac==-0.5 && (i&1)) ){
    i--;
  }
  us = i + pgEpoch*1000000;
  *pSec = us/1000000;
  *pUsec = (int32_t)(us%1000000);
  if( *pUsec<0 ){
    *pUsec += 1000000;
    (*pSec)--;
  }
  return SQLITE_OK;
}

static char *put2(char *z, int v){
  z[0] = (char)('0' + v/10);
  z[1] = (char)('0' + v%10);
  return z+2;
}

/* Write "YYYY-MM-DD" for local day `days`; NULL if outside 1..9999. */
static char *put_date(char *z, int64_t days){
  int y, m, d;
  syncq_civil_from_days(days, &y, &m, &d);
  if( y<1 || y>9999 ) return 0;
  z = put2(z, y/100);
  z = put2(z, y%100);
  *z++ = '-';
  z = put2(z, m);
  *z++ = '-';
  return put2(z, d);
}

/* Write the local date of instant t at offset into zBuf[SYNCQ_DATE_BUFSZ].
** Return its length, or -1 if out of range. */
int syncq_format_date(char *zBuf, int64_t t, int offset){
  char *z;
  if( t<SYNCQ_INSTANT_MIN || t>SYNCQ_INSTANT_MAX ) return -1;
  z = put_date(zBuf, floor_div(t + offset, SECS_PER_DAY));
  if( z==0 ) return -1;
  *z = 0;
  return (int)(z - zBuf);
}

/*
** Write "YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM[:SS]" into zBuf[SYNCQ_WALL_BUFSZ]:
** the wall time of instant t.usec at offset.  SYNCQ_FMT_USEC always
** writes six fractional digits; SYNCQ_FMT_SIX six digits when the fraction
** is not zero; SYNCQ_FMT_TRIM the fraction only when it is not zero,
** without trailing zeros.  Return the length, or -1 if out of range.
*/
int syncq_format_wall(char *zBuf, int64_t t, int32_t usec, int offset,
                      int flags){
  int64_t local, days;
  int secs, a;
  char *z;
  if( t<SYNCQ_INSTANT_MIN || t>SYNCQ_INSTANT_MAX || usec<0 || usec>999999
   || offset< -TZ_OFFSET_MAX || offset>TZ_OFFSET_MAX ){
    return -1;
  }
  local = t + offset;
  days = floor_div(local, SECS_PER_DAY);
  secs = (int)(local - days*SECS_PER_DAY);
  z = put_date(zBuf, days);
  if( z==0 ) return -1;
  *z++ = 'T';
  z = put2(z, secs/3600);
  *z++ = ':';
  z = put2(z, secs/60%60);
  *z++ = ':';
  z = put2(z, secs%60);
  if( usec!=0 || (flags & SYNCQ_FMT_USEC)!=0 ){
    int k, v = usec;
    *z++ = '.';
    for(k=5; k>=0; k--){
      z[k] = (char)('0' + v%10);
      v /= 10;
    }
    z += 6;
    if( (flags & (SYNCQ_FMT_USEC|SYNCQ_FMT_SIX))==0 ){
      while( z[-1]=='0' ) z--;
    }
  }
  *z++ = offset<0 ? '-' : '+';
  a = offset<0 ? -offset : offset;
  z = put2(z, a/3600);
  *z++ = ':';
  z = put2(z, a/60%60);
  if( a%60 ){
    *z++ = ':';
    z = put2(z, a%60);
  }
  *z = 0;
  return (int)(z - zBuf);
}
