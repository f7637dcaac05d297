/*
** sqlite_wake.c - how soon syncqd can see a committed change (Linux).
**
**   sqlite_wake --ext PATH/syncq.so --dir DIR [--n 200]
**
** A writer process commits --n single-row transactions to a tracked,
** immediate table, 5 ms apart, each row holding CLOCK_MONOTONIC just
** before its COMMIT.  A watcher process sees each row and records how long
** after that instant it could read it, three ways:
**   wake file  the writer loaded syncq; the watcher waits on inotify for
**              <db>-syncq-wake, then reads inside BEGIN IMMEDIATE (which
**              waits for the committing writer to finish)
**   WAL file   the writer is a plain connection; the watcher waits on
**              inotify for the -wal file, then reads once PRAGMA
**              data_version moves (retrying every 50 us)
**   polling    plain writer; the watcher checks PRAGMA data_version every
**              10 ms
** Prints a markdown table of the median and 99th percentile.
*/
#define _DEFAULT_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
# include <poll.h>
# include <sys/inotify.h>
# include <sys/wait.h>
#endif

static char zDb[4096];
static const char *zExt;

static void die(sqlite3 *db, const char *zWhat){
  fprintf(stderr, "sqlite_wake: %s: %s\n", zWhat,
          db ? sqlite3_errmsg(db) : "failed");
  exit(1);
}

static void exec(sqlite3 *db, const char *zSql){
  if( sqlite3_exec(db, zSql, 0, 0, 0)!=SQLITE_OK ) die(db, zSql);
}

static sqlite3_int64 nowNs(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (sqlite3_int64)ts.tv_sec*1000000000 + ts.tv_nsec;
}

static sqlite3 *openDb(int bLoad){
  sqlite3 *db = 0;
  if( sqlite3_open(zDb, &db)!=SQLITE_OK ) die(db, zDb);
  sqlite3_busy_timeout(db, 5000);
  exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  if( bLoad ){
    char *zErr = 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int*)0);
    if( sqlite3_load_extension(db, zExt, 0, &zErr)!=SQLITE_OK ){
      fprintf(stderr, "sqlite_wake: cannot load %s: %s\n", zExt, zErr);
      exit(1);
    }
  }
  return db;
}

static int cmpI64(const void *a, const void *b){
  sqlite3_int64 x = *(const sqlite3_int64*)a, y = *(const sqlite3_int64*)b;
  return x<y ? -1 : x>y;
}

#ifdef __linux__
/* The writer: n transactions, 5 ms apart. */
static void writer(int bLoad, int n){
  sqlite3 *db = openDb(bLoad);
  sqlite3_stmt *pIns = 0;
  int i;
  if( sqlite3_prepare_v2(db, "INSERT INTO lat(id, t0) VALUES(?1, ?2)", -1,
                         &pIns, 0) ) die(db, "prepare");
  for(i=1; i<=n; i++){
    usleep(5000);
    exec(db, "BEGIN");
    sqlite3_bind_int(pIns, 1, i);
    sqlite3_bind_int64(pIns, 2, nowNs());
    if( sqlite3_step(pIns)!=SQLITE_DONE ) die(db, "insert");
    sqlite3_reset(pIns);
    exec(db, "COMMIT");
  }
  sqlite3_finalize(pIns);
  sqlite3_close(db);
  _exit(0);
}

/* Reads rows after *piLast; records their latencies.  Returns rows read. */
static int readNew(sqlite3 *db, sqlite3_stmt *pSel, int *piLast,
                   sqlite3_int64 *aLat, int *pnLat){
  int nNew = 0;
  sqlite3_bind_int(pSel, 1, *piLast);
  while( sqlite3_step(pSel)==SQLITE_ROW ){
    sqlite3_int64 t = nowNs();
    *piLast = sqlite3_column_int(pSel, 0);
    aLat[(*pnLat)++] = t - sqlite3_column_int64(pSel, 1);
    nNew++;
  }
  if( sqlite3_reset(pSel)!=SQLITE_OK ) die(db, "select");
  return nNew;
}

/* One way of watching (0 wake file, 1 WAL file, 2 polling); fills aLat. */
static int measure(int eWay, int n, sqlite3_int64 *aLat){
  static const char *const azSuffix[] = { "", "-wal", "-shm", "-syncq-wake" };
  sqlite3 *db;
  sqlite3_stmt *pSel = 0, *pVer = 0;
  char zPath[4200];
  sqlite3_int64 iVer = 0;
  int iLast = 0, nLat = 0, fd = -1;
  size_t k;
  pid_t pid;

  for(k=0; k<sizeof(azSuffix)/sizeof(azSuffix[0]); k++){
    snprintf(zPath, sizeof(zPath), "%s%s", zDb, azSuffix[k]);
    unlink(zPath);
  }
  db = openDb(1);
  exec(db, "CREATE TABLE lat(id INTEGER PRIMARY KEY, t0 INTEGER);"
           "SELECT sync_track('lat', 'immediate'); SELECT sync_trigger();");
  exec(db, "INSERT INTO lat VALUES(0, 0)");     /* the WAL file exists now */
  if( sqlite3_prepare_v2(db, "SELECT id, t0 FROM lat WHERE id > ?1 ORDER BY id",
                         -1, &pSel, 0)
   || sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &pVer, 0) ){
    die(db, "prepare");
  }
  if( eWay<2 ){
    fd = inotify_init1(IN_NONBLOCK|IN_CLOEXEC);
    snprintf(zPath, sizeof(zPath), "%s%s", zDb,
             eWay==0 ? "-syncq-wake" : "-wal");
    if( fd<0 || inotify_add_watch(fd, zPath, IN_MODIFY)<0 ){
      die(0, "inotify");
    }
  }

  pid = fork();
  if( pid==0 ) writer(eWay==0, n);
  if( pid<0 ) die(0, "fork");

  while( nLat<n ){
    if( eWay<2 ){
      struct pollfd p = { fd, POLLIN, 0 };
      char aBuf[4096];
      if( poll(&p, 1, 2000)<=0 ) break;              /* the writer is gone */
      while( read(fd, aBuf, sizeof(aBuf))>0 ){}
    }else{
      usleep(10000);
    }
    if( eWay==0 ){
      exec(db, "BEGIN IMMEDIATE");
      readNew(db, pSel, &iLast, aLat, &nLat);
      exec(db, "COMMIT");
    }else{
      int i;
      for(i=0; i<(eWay==1 ? 40 : 1); i++){
        sqlite3_int64 v;
        if( sqlite3_step(pVer)!=SQLITE_ROW ) die(db, "data_version");
        v = sqlite3_column_int64(pVer, 0);
        sqlite3_reset(pVer);
        if( v!=iVer ){
          iVer = v;
          readNew(db, pSel, &iLast, aLat, &nLat);
          break;
        }
        usleep(50);
      }
    }
  }
  waitpid(pid, 0, 0);
  if( fd>=0 ) close(fd);
  sqlite3_finalize(pSel);
  sqlite3_finalize(pVer);
  sqlite3_close(db);
  return nLat;
}
#endif

int main(int argc, char **argv){
  const char *zDir = 0;
  int n = 200;
  int i;
  for(i=1; i<argc; i++){
    if( i+1<argc && strcmp(argv[i], "--ext")==0 ) zExt = argv[++i];
    else if( i+1<argc && strcmp(argv[i], "--dir")==0 ) zDir = argv[++i];
    else if( i+1<argc && strcmp(argv[i], "--n")==0 ) n = atoi(argv[++i]);
    else{
      fprintf(stderr, "usage: sqlite_wake --ext SYNCQ_SO --dir DIR [--n N]\n");
      return 1;
    }
  }
  if( zExt==0 || zDir==0 || n<2 ){
    fprintf(stderr, "sqlite_wake: --ext and --dir are required\n");
    return 1;
  }
  snprintf(zDb, sizeof(zDb), "%s/wake.db", zDir);
#ifdef __linux__
  {
    static const char *const azWay[] = {
      "syncq loaded: commit hook writes `<db>-syncq-wake`, inotify, BEGIN IMMEDIATE",
      "plain connection: inotify on `<db>-wal`, then PRAGMA data_version",
      "plain connection: PRAGMA data_version polled every 10 ms",
    };
    sqlite3_int64 *aLat = malloc(sizeof(sqlite3_int64)*(size_t)n);
    int w;
    if( aLat==0 ) die(0, "malloc");
    printf("### SQLite capture: commit to syncqd seeing it (%d commits each)\n\n",
           n);
    printf("| path | seen | median | p99 |\n|---|---|---|---|\n");
    for(w=0; w<3; w++){
      int nLat = measure(w, n, aLat);
      if( nLat==0 ){
        printf("| %s | 0 | - | - |\n", azWay[w]);
        continue;
      }
      qsort(aLat, (size_t)nLat, sizeof(aLat[0]), cmpI64);
      printf("| %s | %d | %.2f ms | %.2f ms |\n", azWay[w], nLat,
             aLat[nLat/2]/1e6, aLat[(nLat*99)/100]/1e6);
    }
    free(aLat);
  }
#else
  printf("(sqlite_wake needs Linux inotify)\n");
#endif
  return 0;
}
