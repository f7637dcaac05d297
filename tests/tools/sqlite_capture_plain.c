/*
** sqlite_capture_plain.c - capture seen from an app that never loads syncq.
**
**   sqlite_capture_plain DB
**
** DB was prepared by tests/integration/sqlite_capture.sh with the
** extension: tables item, "Order ""Lines"" ☃" (WITHOUT ROWID, composite
** key) and audit_log (batched) are tracked.  This program, linked with the
** stock libsqlite3 and never loading an extension, writes to them with
** bound parameters (and drops a column of a tracked table) and checks that
** sync_queue holds exactly the expected rows (the key; the row is read
** later, by sync_fill()), in order, with this node's id, a NULL txid, the right priority and
** a microsecond UTC changed_at; and that another connection sees each
** commit through PRAGMA data_version (how syncqd notices plain writers).
** Prints "ok ..." and exits 0, or names the first difference and exits 1.
*/
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static sqlite3 *db;
static int nFail;

static void fail(const char *zWhat, const char *zDetail){
  fprintf(stderr, "FAIL: %s: %s\n", zWhat, zDetail ? zDetail : "");
  nFail++;
}

static void exec(const char *zSql){
  char *zErr = 0;
  if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
    fail(zSql, zErr);
    sqlite3_free(zErr);
  }
}

/* Runs zSql with the given bindings: a string of type letters, one per
** parameter ('i' int64, 'd' double, 't' text, 'b' blob+len, 'n' NULL). */
static void run(const char *zSql, const char *zTypes, ...){
  sqlite3_stmt *pStmt = 0;
  va_list ap;
  int i;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)!=SQLITE_OK ){
    fail(zSql, sqlite3_errmsg(db));
    return;
  }
  va_start(ap, zTypes);
  for(i=0; zTypes[i]; i++){
    switch( zTypes[i] ){
      case 'i': sqlite3_bind_int64(pStmt, i+1, va_arg(ap, sqlite3_int64)); break;
      case 'd': sqlite3_bind_double(pStmt, i+1, va_arg(ap, double)); break;
      case 't': sqlite3_bind_text(pStmt, i+1, va_arg(ap, const char*), -1,
                                  SQLITE_TRANSIENT); break;
      case 'b': {
        const void *p = va_arg(ap, const void*);
        int n = va_arg(ap, int);
        sqlite3_bind_blob(pStmt, i+1, p, n, SQLITE_TRANSIENT);
        break;
      }
      default:  sqlite3_bind_null(pStmt, i+1); break;
    }
  }
  va_end(ap);
  if( sqlite3_step(pStmt)!=SQLITE_DONE ) fail(zSql, sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
}

/* The integer zSql returns on pDb, or -1. */
static sqlite3_int64 queryInt(sqlite3 *pDb, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 v = -1;
  if( sqlite3_prepare_v2(pDb, zSql, -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW ){
    v = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return v;
}

static sqlite3_int64 data_version(sqlite3 *pDb){
  return queryInt(pDb, "PRAGMA data_version");
}

/* The rows the writes below must queue, in order:
** table_name|op|pk|row_data|priority.  The triggers queue the key only;
** row_data is read from the table by sync_fill() before syncqd ships. */
static const char *const azExpect[] = {
  "item|I|{\"id\":1}||immediate",
  "item|I|{\"id\":9007199254740993}||immediate",
  "item|U|{\"id\":1}||immediate",
  "item|D|{\"id\":1}||immediate",
  "item|I|{\"id\":2}||immediate",
  "item|D|{\"id\":9007199254740993}||immediate",
  "Order \"Lines\" \xe2\x98\x83|I|{\"order\":\"A-1\",\"l\xc3\xadnea\":1}||"
    "immediate",
  "Order \"Lines\" \xe2\x98\x83|D|{\"order\":\"A-1\",\"l\xc3\xadnea\":1}||"
    "immediate",
  "Order \"Lines\" \xe2\x98\x83|I|{\"order\":\"A-1\",\"l\xc3\xadnea\":2}||"
    "immediate",
  "Order \"Lines\" \xe2\x98\x83|D|{\"order\":\"A-1\",\"l\xc3\xadnea\":2}||"
    "immediate",
  "audit_log|I|{\"id\":\"log-1\"}||batched",
  "item|I|{\"id\":3}||immediate",
};
#define N_EXPECT ((int)(sizeof(azExpect)/sizeof(azExpect[0])))

int main(int argc, char **argv){
  static const unsigned char aBlob[] = { 0x00, 0xff, 0x10 };
  sqlite3 *pWatch = 0;
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 v0, v1, iStart;
  int nRow = 0;

  if( argc!=2 ){
    fprintf(stderr, "usage: sqlite_capture_plain DB\n");
    return 2;
  }
  if( sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, 0)!=SQLITE_OK
   || sqlite3_open_v2(argv[1], &pWatch, SQLITE_OPEN_READONLY, 0)!=SQLITE_OK ){
    fprintf(stderr, "FAIL: cannot open %s\n", argv[1]);
    return 1;
  }
  /* Nothing syncq about this connection. */
  if( sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int*)0)
      !=SQLITE_OK ){
    fail("disable extension loading", sqlite3_errmsg(db));
  }
  iStart = queryInt(db, "SELECT coalesce(max(seq), 0) FROM sync_queue");
  v0 = data_version(pWatch);

  run("INSERT INTO item VALUES(?1, ?2, ?3, ?4, ?5)", "itdbn",
      (sqlite3_int64)1, "plain", 0.1, aBlob, (int)sizeof(aBlob));
  v1 = data_version(pWatch);
  if( v1==v0 ) fail("data_version", "did not move after a plain commit");
  run("INSERT INTO item VALUES(?1, ?2, ?3, ?4, ?5)", "itdni",
      (sqlite3_int64)9007199254740993LL,
      "na\xc3\xafve \xe2\x98\x83 \"q\"", 2.5,
      (sqlite3_int64)9223372036854775807LL);
  exec("BEGIN");
  run("UPDATE item SET name = ?1, n = ?2 WHERE id = 1", "ti", "renamed",
      (sqlite3_int64)(-9223372036854775807LL - 1));
  exec("UPDATE item SET id = 2 WHERE id = 1");
  exec("COMMIT");
  if( data_version(pWatch)==v1 ) fail("data_version", "did not move again");
  run("DELETE FROM item WHERE id = ?1", "i", (sqlite3_int64)9007199254740993LL);
  run("INSERT INTO \"Order \"\"Lines\"\" \xe2\x98\x83\" VALUES(?1, ?2, ?3, ?4)",
      "tidt", "A-1", (sqlite3_int64)1, 1e-7, "x");
  exec("UPDATE \"Order \"\"Lines\"\" \xe2\x98\x83\" SET \"l\xc3\xadnea\" = 2");
  exec("DELETE FROM \"Order \"\"Lines\"\" \xe2\x98\x83\"");
  run("INSERT INTO audit_log VALUES(?1, ?2, ?3)", "ttt", "log-1",
      "2025-07-24T00:30:00Z", "hello");
  /* A tracked table's column dropped by the app: the triggers do not name
  ** it, so SQLite lets it go, and capture goes on. */
  exec("ALTER TABLE item DROP COLUMN n");
  run("INSERT INTO item VALUES(?1, ?2, ?3, ?4)", "itdn", (sqlite3_int64)3,
      "after the drop", 1.5);

  if( sqlite3_prepare_v2(db,
      "SELECT table_name || '|' || op || '|' || pk || '|' ||"
      " coalesce(row_data, '') || '|' || priority,"
      " txid IS NULL,"
      " origin = (SELECT node_id FROM syncq_state),"
      " changed_at GLOB '20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:"
      "[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'"
      " FROM sync_queue WHERE seq > ?1 ORDER BY seq", -1, &pStmt, 0)
      !=SQLITE_OK ){
    fail("read sync_queue", sqlite3_errmsg(db));
  }else{
    sqlite3_bind_int64(pStmt, 1, iStart);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *zRow = (const char*)sqlite3_column_text(pStmt, 0);
      if( nRow>=N_EXPECT ){
        fail("unexpected row", zRow);
      }else if( strcmp(zRow, azExpect[nRow])!=0 ){
        fprintf(stderr, "expected: %s\n", azExpect[nRow]);
        fail("row differs", zRow);
      }
      if( !sqlite3_column_int(pStmt, 1) ) fail("txid not NULL", zRow);
      if( !sqlite3_column_int(pStmt, 2) ) fail("origin is not this node", zRow);
      if( !sqlite3_column_int(pStmt, 3) ) fail("changed_at format", zRow);
      nRow++;
    }
    sqlite3_finalize(pStmt);
  }
  if( nRow!=N_EXPECT ) fail("row count", nRow<N_EXPECT ? "too few" : "too many");

  sqlite3_close(pWatch);
  if( sqlite3_close(db)!=SQLITE_OK ) fail("close", sqlite3_errmsg(db));
  if( nFail ) return 1;
  printf("ok: %d changes queued exactly by a connection without syncq\n", nRow);
  return 0;
}
