/*
** sqlite_bench.c - what SQLite capture costs the application.
**
**   sqlite_bench --ext PATH/syncq.so --dir DIR [--reps 7] [--rows 100000]
**                [--txns 10000]
**
** Two workloads, each on a fresh WAL database with synchronous=NORMAL:
**   batch   --rows single-row INSERTs in one transaction
**   single  --txns transactions of one INSERT each
** and four ways of writing the same rows:
**   bare     the table alone
**   tracked  sync_track()ed table, written by a connection that never
**            loaded syncq (the app with its stock driver)
**   loaded   the same, from a connection that loaded syncq (txid, commit
**            hook, wake-up file)
**   floor    the app writing the row and its queue row itself: a second
**            prepared INSERT into sync_queue with the same JSON and the
**            same version (the hybrid logical clock)
** Variants run interleaved, in a rotating order, --reps times; the table
** printed (markdown, on stdout) holds the median time of each.
*/
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BARE, TRACKED, LOADED, FLOOR, N_KIND };
static const char *const azKind[N_KIND] = {
  "bare", "tracked", "loaded", "floor"
};

static const char zTable[] =
  "CREATE TABLE completions(\n"
  "  id           INTEGER PRIMARY KEY,\n"
  "  site_id      INTEGER NOT NULL,\n"
  "  inspector    TEXT NOT NULL,\n"
  "  completed_at TEXT NOT NULL,\n"
  "  score        INTEGER,\n"
  "  notes        TEXT\n"
  ")";
static const char zInsertRow[] =
  "INSERT INTO completions(id, site_id, inspector, completed_at, score, notes)"
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
/* What the floor app writes: the queue row the trigger writes for these
** rows, the same JSON and the same version (changed_at: the hybrid logical
** clock of sqlite_ext/capture.h, SYNCQ_VERSION_EXPR). */
static const char zInsertQueue[] =
  "INSERT INTO sync_queue(txid, table_name, op, pk, row_data, changed_at,"
  " origin, priority) VALUES(NULL, 'completions', 'I', json_object('id', ?1),"
  " json_object('id', ?1, 'site_id', ?2, 'inspector', ?3, 'completed_at', ?4,"
  " 'score', ?5, 'notes', ?6),"
  " max(strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'),"
  " coalesce((SELECT next FROM syncq_state), ''),"
  " coalesce((SELECT changed_at FROM sync_queue WHERE changed_at GLOB"
  " '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'"
  " ORDER BY seq DESC LIMIT 1), '')),"
  " ?7, 'immediate')";

static const char *zExt;
static const char *zTriggerFile;   /* --trigger FILE: replaces syncq_ins */
static char zDb[4096];

static void die(sqlite3 *db, const char *zWhat){
  fprintf(stderr, "sqlite_bench: %s: %s\n", zWhat,
          db ? sqlite3_errmsg(db) : "out of memory");
  exit(1);
}

static void exec(sqlite3 *db, const char *zSql){
  if( sqlite3_exec(db, zSql, 0, 0, 0)!=SQLITE_OK ) die(db, zSql);
}

static double now(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
}

static sqlite3 *openDb(int bLoad){
  sqlite3 *db = 0;
  if( sqlite3_open(zDb, &db)!=SQLITE_OK ) die(db, zDb);
  exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  if( bLoad ){
    char *zErr = 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int*)0);
    if( sqlite3_load_extension(db, zExt, 0, &zErr)!=SQLITE_OK ){
      fprintf(stderr, "sqlite_bench: cannot load %s: %s\n", zExt, zErr);
      exit(1);
    }
  }
  return db;
}

/* A fresh database for kind eKind; *pzNode gets the node id (floor). */
static void setup(int eKind, char *zNode, size_t nNode){
  static const char *const azSuffix[] = { "", "-wal", "-shm", "-syncq-wake" };
  sqlite3 *db;
  size_t i;
  for(i=0; i<sizeof(azSuffix)/sizeof(azSuffix[0]); i++){
    char zPath[4200];
    snprintf(zPath, sizeof(zPath), "%s%s", zDb, azSuffix[i]);
    unlink(zPath);
  }
  db = openDb(eKind!=BARE);
  exec(db, zTable);
  if( eKind==TRACKED || eKind==LOADED ){
    exec(db, "SELECT sync_track('completions', 'immediate')");
    if( zTriggerFile ){
      char zSql[65536];
      FILE *f = fopen(zTriggerFile, "r");
      size_t n = f ? fread(zSql, 1, sizeof(zSql)-1, f) : 0;
      if( f ) fclose(f);
      zSql[n] = 0;
      exec(db, "DROP TRIGGER \"syncq_ins:completions\"");
      exec(db, zSql);
    }
  }else if( eKind==FLOOR ){
    sqlite3_stmt *pStmt;
    if( sqlite3_prepare_v2(db, "SELECT sync_node_id()", -1, &pStmt, 0) ){
      die(db, "sync_node_id");
    }
    if( sqlite3_step(pStmt)!=SQLITE_ROW ) die(db, "sync_node_id");
    snprintf(zNode, nNode, "%s", (const char*)sqlite3_column_text(pStmt, 0));
    sqlite3_finalize(pStmt);
  }
  exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  if( sqlite3_close(db)!=SQLITE_OK ) die(db, "close");
}

static void bindRow(sqlite3_stmt *pStmt, int i){
  char zInspector[32];
  char zAt[32];
  snprintf(zInspector, sizeof(zInspector), "inspector-%d", i%37);
  snprintf(zAt, sizeof(zAt), "2025-07-%02dT%02d:%02d:00.000Z",
           1 + i%28, i%24, i%60);
  sqlite3_bind_int64(pStmt, 1, i);
  sqlite3_bind_int(pStmt, 2, i%500);
  sqlite3_bind_text(pStmt, 3, zInspector, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 4, zAt, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(pStmt, 5, i%101);
  if( i%3 ) sqlite3_bind_null(pStmt, 6);
  else sqlite3_bind_text(pStmt, 6, "ok, gate latch replaced", -1,
                         SQLITE_STATIC);
}

static void step(sqlite3 *db, sqlite3_stmt *pStmt){
  if( sqlite3_step(pStmt)!=SQLITE_DONE ) die(db, sqlite3_sql(pStmt));
  sqlite3_reset(pStmt);
}

/* One timed run: n rows, one transaction (bSingle==0) or one each. */
static double runOnce(int eKind, int bSingle, int n){
  char zNode[64] = "";
  sqlite3 *db;
  sqlite3_stmt *pRow = 0, *pQueue = 0;
  sqlite3_stmt *pBegin = 0, *pCommit = 0;
  double t0, t;
  int i;

  setup(eKind, zNode, sizeof(zNode));
  db = openDb(eKind==LOADED);
  if( sqlite3_prepare_v2(db, zInsertRow, -1, &pRow, 0) ) die(db, zInsertRow);
  if( eKind==FLOOR ){
    if( sqlite3_prepare_v2(db, zInsertQueue, -1, &pQueue, 0) ){
      die(db, zInsertQueue);
    }
    sqlite3_bind_text(pQueue, 7, zNode, -1, SQLITE_TRANSIENT);
  }
  if( sqlite3_prepare_v2(db, "BEGIN", -1, &pBegin, 0)
   || sqlite3_prepare_v2(db, "COMMIT", -1, &pCommit, 0) ){
    die(db, "prepare");
  }

  t0 = now();
  if( !bSingle ) step(db, pBegin);
  for(i=1; i<=n; i++){
    if( bSingle ) step(db, pBegin);
    bindRow(pRow, i);
    step(db, pRow);
    if( pQueue ){
      bindRow(pQueue, i);
      step(db, pQueue);
    }
    if( bSingle ) step(db, pCommit);
  }
  if( !bSingle ) step(db, pCommit);
  t = now() - t0;

  sqlite3_finalize(pRow);
  sqlite3_finalize(pQueue);
  sqlite3_finalize(pBegin);
  sqlite3_finalize(pCommit);
  if( sqlite3_close(db)!=SQLITE_OK ) die(db, "close");
  return t;
}

static int cmpDouble(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return x<y ? -1 : x>y;
}

static void cell(double t, int n){
  printf(" %.3f s (%.0fk/s) |", t, n/t/1000.0);
}

int main(int argc, char **argv){
  const char *zDir = 0;
  const char *zOnly = 0, *zOnlyWorkload = 0;
  int nReps = 7, nRows = 100000, nTxns = 10000;
  double *aTime;
  double aMed[2][N_KIND];
  int w, k, r, i;

  for(i=1; i<argc; i++){
    if( i+1<argc && strcmp(argv[i], "--ext")==0 ) zExt = argv[++i];
    else if( i+1<argc && strcmp(argv[i], "--dir")==0 ) zDir = argv[++i];
    else if( i+1<argc && strcmp(argv[i], "--reps")==0 ) nReps = atoi(argv[++i]);
    else if( i+1<argc && strcmp(argv[i], "--rows")==0 ) nRows = atoi(argv[++i]);
    else if( i+1<argc && strcmp(argv[i], "--txns")==0 ) nTxns = atoi(argv[++i]);
    else if( i+1<argc && strcmp(argv[i], "--trigger")==0 ) zTriggerFile = argv[++i];
    else if( i+2<argc && strcmp(argv[i], "--only")==0 ){
      /* --only KIND WORKLOAD: one run, prints its time (for profiling) */
      zOnly = argv[++i];
      zOnlyWorkload = argv[++i];
    }
    else{
      fprintf(stderr, "usage: sqlite_bench --ext SYNCQ_SO --dir DIR"
              " [--reps N] [--rows N] [--txns N]\n");
      return 1;
    }
  }
  if( zExt==0 || zDir==0 || nReps<1 || nRows<1 || nTxns<1 ){
    fprintf(stderr, "sqlite_bench: --ext and --dir are required\n");
    return 1;
  }
  snprintf(zDb, sizeof(zDb), "%s/bench.db", zDir);
  if( zOnly ){
    int bSingle = strcmp(zOnlyWorkload, "single")==0;
    for(k=0; k<N_KIND && strcmp(azKind[k], zOnly)!=0; k++){}
    if( k==N_KIND ){
      fprintf(stderr, "sqlite_bench: no kind \"%s\"\n", zOnly);
      return 1;
    }
    printf("%.4f\n", runOnce(k, bSingle, bSingle ? nTxns : nRows));
    return 0;
  }
  aTime = malloc(sizeof(double)*2*N_KIND*(size_t)nReps);
  if( aTime==0 ) die(0, "malloc");

  for(r=0; r<nReps; r++){
    for(w=0; w<2; w++){
      for(i=0; i<N_KIND; i++){
        k = (i + r) % N_KIND;                 /* rotate the order */
        aTime[(w*N_KIND + k)*nReps + r] = runOnce(k, w, w ? nTxns : nRows);
      }
    }
  }
  for(w=0; w<2; w++){
    for(k=0; k<N_KIND; k++){
      double *a = &aTime[(w*N_KIND + k)*nReps];
      qsort(a, (size_t)nReps, sizeof(double), cmpDouble);
      aMed[w][k] = a[nReps/2];
    }
  }

  printf("### SQLite capture: app write cost (SQLite %s, WAL,"
         " synchronous=NORMAL, median of %d)\n\n", sqlite3_libversion(), nReps);
  printf("| workload | bare table | tracked, plain connection | floor: app"
         " writes row + queue row | tracked / floor | tracked, syncq loaded |"
         " loaded / floor |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for(w=0; w<2; w++){
    int n = w ? nTxns : nRows;
    if( w ) printf("| %d single-row transactions |", n);
    else printf("| %d inserts, one transaction |", n);
    cell(aMed[w][BARE], n);
    cell(aMed[w][TRACKED], n);
    cell(aMed[w][FLOOR], n);
    printf(" %.2fx |", aMed[w][TRACKED]/aMed[w][FLOOR]);
    cell(aMed[w][LOADED], n);
    printf(" %.2fx |\n", aMed[w][LOADED]/aMed[w][FLOOR]);
  }
  printf("\n(%s)\n", "tracked: the app's stock driver, no extension;"
         " loaded: the same connection with syncq loaded (txid, commit hook,"
         " wake-up file); times include the COMMITs");
  free(aTime);
  return 0;
}
