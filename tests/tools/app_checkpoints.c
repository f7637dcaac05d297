/*
** app_checkpoints.c - an app writing one row per transaction, counting
** the WAL checkpoints its own commits run.
**
**   app_checkpoints DB EXT N SPACING_MS FIRST_ID
**
** Loads EXT (so that its commits wake syncqd at once), then inserts N rows
** into table lat (id, v), one per transaction, SPACING_MS apart, ids from
** FIRST_ID. Its WAL hook does what SQLite's automatic checkpoint does (a
** checkpoint once a commit leaves 1,000 frames or more in the WAL: the
** hook replaces it on this connection) and counts those commits: each is
** a commit of the app's that also checkpointed the file in the app's time.
** Prints "N CHECKPOINTS MAX_FRAMES SLOWEST_MS" (MAX_FRAMES: the most frames
** a commit of the app's left in the WAL) and exits 0; 1 on an error.
*/
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int nCheckpoints;
static int mxFrames;

/* SQLite's default checkpoint threshold (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT) */
#define AUTO_FRAMES 1000

static int onCommit(void *pArg, sqlite3 *db, const char *zDb, int nFrame){
  (void)pArg;
  if( nFrame>mxFrames ) mxFrames = nFrame;
  if( nFrame>=AUTO_FRAMES ){
    nCheckpoints++;
    sqlite3_wal_checkpoint_v2(db, zDb, SQLITE_CHECKPOINT_PASSIVE, 0, 0);
  }
  return SQLITE_OK;
}

static double nowMs(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec*1e3 + ts.tv_nsec/1e6;
}

int main(int argc, char **argv){
  sqlite3 *db;
  char *zErr = 0;
  int n, spacing;
  long long first;
  double worst = 0;
  struct timespec pause;

  if( argc!=6 ){
    fprintf(stderr, "usage: app_checkpoints DB EXT N SPACING_MS FIRST_ID\n");
    return 1;
  }
  n = atoi(argv[3]);
  spacing = atoi(argv[4]);
  first = atoll(argv[5]);
  if( sqlite3_open(argv[1], &db)!=SQLITE_OK ){
    fprintf(stderr, "open %s: %s\n", argv[1], sqlite3_errmsg(db));
    return 1;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_enable_load_extension(db, 1);
  if( sqlite3_load_extension(db, argv[2], 0, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "load %s: %s\n", argv[2], zErr ? zErr : "?");
    return 1;
  }
  sqlite3_wal_hook(db, onCommit, 0);
  pause.tv_sec = spacing/1000;
  pause.tv_nsec = (long)(spacing%1000)*1000000L;
  for(int i=0; i<n; i++){
    char *zSql = sqlite3_mprintf("INSERT INTO lat VALUES(%lld, 'app')", first+i);
    double t0;
    nanosleep(&pause, 0);
    t0 = nowMs();
    if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
      fprintf(stderr, "insert %lld: %s\n", first+i, zErr ? zErr : "?");
      return 1;
    }
    t0 = nowMs()-t0;
    if( t0>worst ) worst = t0;
    sqlite3_free(zSql);
  }
  printf("%d %d %d %.0f\n", n, nCheckpoints, mxFrames, worst);
  sqlite3_close(db);
  return 0;
}
