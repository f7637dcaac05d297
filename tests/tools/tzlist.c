/*
** tzlist - list the UTC offset changes of a zone, as syncq's engine sees them.
**
**   tzlist [-v] ZONE FROM_YEAR TO_YEAR
**
** Prints one line per transition in [FROM_YEAR-01-01T00:00:00Z,
** (TO_YEAR+1)-01-01T00:00:00Z): the instant in Unix seconds; with -v also
** the offsets before and after, in seconds east of UTC.  Exits 1 with a
** message on stderr if the zone cannot be loaded.
**
** Build: cc -std=c11 -Wall -Wextra -Werror -I common \
**            tests/tools/tzlist.c common/tz.c -lsqlite3
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "tz.h"

static int parse_year(const char *z, int *pYear){
  char *zEnd;
  long v = strtol(z, &zEnd, 10);
  if( *z==0 || *zEnd!=0 || v<1 || v>9999 ) return 0;
  *pYear = (int)v;
  return 1;
}

int main(int argc, char **argv){
  SyncqTz *pTz = 0;
  int bVerbose = 0, y0, y1, rc;
  int64_t t, tEnd;
  if( argc>1 && strcmp(argv[1], "-v")==0 ){
    bVerbose = 1;
    argc--;
    argv++;
  }
  if( argc!=4 || !parse_year(argv[2], &y0) || !parse_year(argv[3], &y1) ){
    fprintf(stderr, "usage: tzlist [-v] ZONE FROM_YEAR TO_YEAR\n");
    return 1;
  }
  rc = syncq_tz_load(argv[1], &pTz);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "tzlist: %s \"%s\"\n", syncq_tz_errstr(rc), argv[1]);
    return 1;
  }
  t = syncq_days_from_civil(y0, 1, 1)*86400 - 1;
  tEnd = syncq_days_from_civil(y1+1, 1, 1)*86400;
  while( syncq_tz_next_transition(pTz, t, &t)==SQLITE_OK && t<tEnd ){
    if( bVerbose ){
      int offBefore = 0, offAfter = 0;
      if( syncq_tz_offset(pTz, t-1, &offBefore)!=SQLITE_OK
       || syncq_tz_offset(pTz, t, &offAfter)!=SQLITE_OK ){
        fprintf(stderr, "tzlist: instant out of range\n");
        syncq_tz_free(pTz);
        return 1;
      }
      printf("%lld %d %d\n", (long long)t, offBefore, offAfter);
    }else{
      printf("%lld\n", (long long)t);
    }
  }
  syncq_tz_free(pTz);
  return fflush(stdout)==0 ? 0 : 1;
}
