/*
** capture.c - the syncq capture functions for SQLite.
**
** Every INSERT, UPDATE and DELETE of a tracked table is queued in
** sync_queue (docs/queue.md) by ordinary schema triggers, so an app that
** writes with a stock driver that never loads syncq is captured too.
** Loading the extension is needed only to call these functions:
**
**   sync_track(table [, priority [, keys, forms]])
**       Start capturing table; priority is 'immediate' (default) or
**       'batched'.  Re-running it changes the priority and rewrites the
**       triggers (after ALTER TABLE ADD COLUMN, say).  Returns the priority.
**       keys must be NULL (the default key policy).  forms says how syncqd
**       writes the hub's values into the table (docs/replication.md,
**       Types): NULL or 'default', 'sqlalchemy' (the forms SQLAlchemy's
**       SQLite types store), or a JSON object naming columns; without it
**       the forms stay as they were.
**         SELECT sync_track('audit_completions');
**         SELECT sync_track('audit_log', 'batched');
**         SELECT sync_track('visits', 'immediate', NULL, 'sqlalchemy');
**         SELECT sync_track('visits', 'immediate', NULL, '{"span":"sqlalchemy"}');
**
**   sync_untrack(table)
**       Stop capturing; rows already queued stay.  Returns 1 if the table
**       was tracked, 0 if not.
**         SELECT sync_untrack('audit_log');
**
**   sync_enqueue(table, op, pk, row [, immediate])
**       Queue one change by hand.  op is 'I', 'U' or 'D'; pk a JSON object;
**       row a JSON object (NULL for 'D'); immediate 1 (default) or 0.
**       Returns the new seq.
**         SELECT sync_enqueue('sites', 'U', '{"id":7}', '{"id":7,"name":"North"}');
**
**   sync_trigger()
**       Ask syncqd to sync now (writes <database>-syncq-wake).  Returns 1,
**       or 0 for a database without a file.
**         SELECT sync_trigger();
**
**   sync_node_id()
**       This database's node id: a UUID made on first use and kept in
**       syncq_state.
**         SELECT sync_node_id();     -- 'f81d4fae-7dec-4d0a-a765-00a0c91e6bf6'
**
**   is_online_server()
**       0: a SQLite database is always a client.  (1 on the PostgreSQL hub.)
**
**   sync_pause()  /  sync_resume()
**       Stop / restart capture for every connection, e.g. around a bulk
**       import every node does itself.  Return 1 if the state changed.
**       Plain SQL does the same: UPDATE syncq_state SET paused = 1;
**         BEGIN; SELECT sync_pause(); INSERT ...; SELECT sync_resume(); COMMIT;
**
**   sync_apply_origin(node_id)
**       For syncqd: the changes this connection makes in the current
**       transaction were first made on node_id (a UUID), and are queued
**       with that origin.  Forgotten at COMMIT or ROLLBACK; NULL clears it.
**         BEGIN; SELECT sync_apply_origin('7d444840-9dc0-11d1-b245-5ffdce74fad2');
**         INSERT ...; COMMIT;
**
**   sync_reidentify(node_id)
**       Give this database a new node id (a copied file must not keep its
**       original's).  The triggers hold the id, so they are rewritten; a
**       plain UPDATE of syncq_state.node_id is refused.  Returns node_id.
**         SELECT sync_reidentify('1b4e28ba-2fa1-11d2-883f-0016d3cca427');
**
**   sync_repair()
**       Rewrite stale or missing triggers of every tracked table (after
**       ALTER TABLE RENAME TO, a table rebuilt by a migration tool, a new
**       node id), remember the columns each table lost (dropped or
**       renamed), and return how many tables were repaired.  No change is
**       queued again: queued changes keep their versions.  A table whose
**       triggers were missing (rebuilt) is compared with its row sums
**       (syncq_rowsums): the rows written since the triggers went are
**       queued as new changes (docs/sqlite_capture.md).  syncqd calls it
**       whenever PRAGMA schema_version moved, before it reads the queue.
**         SELECT sync_repair();
**
**   syncq_sums_watch()
**       For syncqd: temporary triggers on this connection keep the row
**       sums of what it writes into tracked tables; returns how many
**       tables they watch.
**
**   sync_fill([n])
**       For syncqd: the capture triggers queue the key only; read the rows
**       of the queued changes from their tables into row_data (a change
**       whose row is gone since becomes a delete of its key): all of them,
**       or the next n still to be read; return the newest seq it covered.
**       syncqd runs it in transactions of its own before it reads the
**       queue, and ships no further.
**         SELECT sync_fill();   SELECT sync_fill(2000);
**
** On this connection the extension also overrides the built-in
** sqlite_compileoption_get() so that the triggers record a txid (see
** capture_conn.c); every other use of it behaves as before.
*/
#include "capture.h"

#include <string.h>

/* Reports an error of SQL function zFunc: "zFunc: message".  Takes
** ownership of zMsg (may be NULL after an out-of-memory error). */
static void resultError(sqlite3_context *ctx, const char *zFunc, int rc,
                        char *zMsg){
  if( rc==SQLITE_NOMEM || (zMsg==0 && rc!=SQLITE_TOOBIG) ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc==SQLITE_TOOBIG ){
    sqlite3_result_error_toobig(ctx);
  }else{
    char *z = sqlite3_mprintf("%s: %s", zFunc, zMsg);
    if( z==0 ){
      sqlite3_result_error_nomem(ctx);
    }else{
      sqlite3_result_error(ctx, z, -1);
      sqlite3_result_error_code(ctx, rc==SQLITE_NOTFOUND || rc==SQLITE_MISUSE
                                     || rc==SQLITE_MISMATCH ? SQLITE_ERROR : rc);
      sqlite3_free(z);
    }
  }
  sqlite3_free(zMsg);
}

/* The text of an argument for an error message: at most 60 bytes, cut at a
** character boundary, "..." when cut, or NULL. */
static char *shownValue(sqlite3_value *pVal){
  const unsigned char *z = sqlite3_value_text(pVal);
  int n;
  if( z==0 ) return sqlite3_mprintf("NULL");
  n = sqlite3_value_bytes(pVal);
  if( n<=60 ) return sqlite3_mprintf("\"%s\"", z);
  n = 57;
  while( n>0 && (z[n]&0xc0)==0x80 ) n--;
  return sqlite3_mprintf("\"%.*s...\"", n, z);
}

/* Text of a table-name argument, or an error reported (returns NULL). */
static const char *tableArg(sqlite3_context *ctx, const char *zFunc,
                            sqlite3_value *pVal){
  const char *z;
  if( sqlite3_value_type(pVal)!=SQLITE_TEXT ){
    char *zShown = shownValue(pVal);
    resultError(ctx, zFunc, SQLITE_ERROR,
                zShown ? sqlite3_mprintf("table name must be text, not %s",
                                         zShown) : 0);
    sqlite3_free(zShown);
    return 0;
  }
  z = (const char*)sqlite3_value_text(pVal);
  if( z==0 ) sqlite3_result_error_nomem(ctx);
  return z;
}

/*
** sync_track(table [, priority [, keys, forms]])
*/
static void syncTrackFunc(sqlite3_context *ctx, int argc,
                          sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zTable;
  const char *zPriority = SYNCQ_PRIORITY_IMMEDIATE;
  const char *zKeys = 0;
  const char *zForms = 0;
  sqlite3_int64 iLastRowid = sqlite3_last_insert_rowid(db);
  char *zErr = 0;
  int rc;

  zTable = tableArg(ctx, "sync_track", argv[0]);
  if( zTable==0 ) return;
  if( argc>1 ){
    zPriority = (const char*)sqlite3_value_text(argv[1]);
    if( zPriority==0 ){
      resultError(ctx, "sync_track", SQLITE_ERROR, sqlite3_mprintf(
          "bad priority NULL: expected 'immediate' or 'batched'"));
      return;
    }
  }
  if( argc>2 && sqlite3_value_type(argv[2])!=SQLITE_NULL ){
    if( sqlite3_value_type(argv[2])!=SQLITE_TEXT ){
      char *zShown = shownValue(argv[2]);
      resultError(ctx, "sync_track", SQLITE_ERROR, zShown ? sqlite3_mprintf(
          "bad keys %s: expected 'auto', 'hub', 'natural' or NULL", zShown)
          : 0);
      sqlite3_free(zShown);
      return;
    }
    zKeys = (const char*)sqlite3_value_text(argv[2]);
    if( zKeys==0 ){
      sqlite3_result_error_nomem(ctx);
      return;
    }
  }
  if( argc>3 ){
    zForms = sqlite3_value_type(argv[3])==SQLITE_NULL ? "default"
             : (const char*)sqlite3_value_text(argv[3]);
    if( zForms==0 ){
      sqlite3_result_error_nomem(ctx);
      return;
    }
  }
  rc = syncq_track(db, zTable, zPriority, zKeys, zForms, &zErr);
  sqlite3_set_last_insert_rowid(db, iLastRowid);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_track", rc, zErr);
    return;
  }
  sqlite3_free(zErr);
  sqlite3_result_text(ctx, zPriority, -1, SQLITE_TRANSIENT);
}

/*
** sync_untrack(table)
*/
static void syncUntrackFunc(sqlite3_context *ctx, int argc,
                            sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zTable;
  char *zErr = 0;
  int bWasTracked = 0;
  int rc;

  (void)argc;
  zTable = tableArg(ctx, "sync_untrack", argv[0]);
  if( zTable==0 ) return;
  rc = syncq_untrack(db, zTable, &bWasTracked, &zErr);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_untrack", rc, zErr);
    return;
  }
  sqlite3_free(zErr);
  sqlite3_result_int(ctx, bWasTracked);
}

/* Checks that pVal is JSON text of an object (or, if bNullOk, NULL).
** Returns 1 if so; otherwise reports "<zWhat> is not a JSON object: v". */
static int checkJsonObject(sqlite3_context *ctx, sqlite3 *db,
                           sqlite3_value *pVal, const char *zWhat,
                           int bNullOk){
  sqlite3_stmt *pStmt = 0;
  int bOk = 0;
  int rc;
  char *zShown;

  if( sqlite3_value_type(pVal)==SQLITE_NULL && bNullOk ) return 1;
  if( sqlite3_value_type(pVal)==SQLITE_TEXT ){
    rc = sqlite3_prepare_v2(db,
        "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' END",
        -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      rc = sqlite3_bind_value(pStmt, 1, pVal);
      if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
        bOk = sqlite3_column_int(pStmt, 0);
      }
      if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
      else sqlite3_finalize(pStmt);
    }
    if( rc!=SQLITE_OK ){
      resultError(ctx, "sync_enqueue", rc,
                  rc==SQLITE_NOMEM ? 0 : sqlite3_mprintf("%s",
                                                         sqlite3_errmsg(db)));
      return 0;
    }
    if( bOk ) return 1;
  }
  zShown = shownValue(pVal);
  resultError(ctx, "sync_enqueue", SQLITE_ERROR, zShown==0 ? 0 :
      sqlite3_mprintf("%s is not a JSON object: %s", zWhat, zShown));
  sqlite3_free(zShown);
  return 0;
}

/*
** sync_enqueue(table, op, pk, row [, immediate])
*/
static void syncEnqueueFunc(sqlite3_context *ctx, int argc,
                            sqlite3_value **argv){
  static const char zInsert[] =
      "INSERT INTO main.sync_queue(txid, table_name, op, pk, row_data,"
      " changed_at, origin, priority)"
      " VALUES(?1, ?2, ?3, json(?4), json(?5), " SYNCQ_VERSION_EXPR ","
      " coalesce(?7, (SELECT node_id FROM main.syncq_state)), ?6)";
  SyncqConn *pConn = (SyncqConn*)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_int64 iLastRowid = sqlite3_last_insert_rowid(db);
  sqlite3_stmt *pStmt = 0;
  const char *zTable;
  const char *zOp;
  char *zName = 0;
  char *zErr = 0;
  int bImmediate = 1;
  int rc;

  zTable = tableArg(ctx, "sync_enqueue", argv[0]);
  if( zTable==0 ) return;
  zOp = (const char*)sqlite3_value_text(argv[1]);
  if( zOp==0 || sqlite3_value_type(argv[1])!=SQLITE_TEXT
   || (strcmp(zOp, "I")!=0 && strcmp(zOp, "U")!=0 && strcmp(zOp, "D")!=0) ){
    char *zShown = shownValue(argv[1]);
    resultError(ctx, "sync_enqueue", SQLITE_ERROR, zShown==0 ? 0 :
        sqlite3_mprintf("bad op %s: expected 'I', 'U' or 'D'", zShown));
    sqlite3_free(zShown);
    return;
  }
  if( !checkJsonObject(ctx, db, argv[2], "pk", 0) ) return;
  if( zOp[0]=='D' ){
    if( sqlite3_value_type(argv[3])!=SQLITE_NULL ){
      resultError(ctx, "sync_enqueue", SQLITE_ERROR,
                  sqlite3_mprintf("a delete takes no row: pass NULL"));
      return;
    }
  }else if( !checkJsonObject(ctx, db, argv[3], "row", 0) ){
    return;
  }
  if( argc>4 ){
    if( sqlite3_value_type(argv[4])==SQLITE_NULL ){
      resultError(ctx, "sync_enqueue", SQLITE_ERROR,
          sqlite3_mprintf("bad immediate NULL: expected 1 or 0"));
      return;
    }
    bImmediate = sqlite3_value_int(argv[4])!=0;
  }

  rc = syncq_ensure_schema(db, &zErr);
  if( rc==SQLITE_OK ) rc = syncq_resolve_table(db, zTable, &zName, &zErr);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_enqueue", rc, zErr);
    return;
  }
  rc = sqlite3_prepare_v2(db, zInsert, -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    int rcBind = sqlite3_bind_int64(pStmt, 1,
                                    syncq_conn_txid(pConn, bImmediate));
    if( rcBind==SQLITE_OK ){
      rcBind = sqlite3_bind_text(pStmt, 2, zName, -1, SQLITE_STATIC);
    }
    if( rcBind==SQLITE_OK ){
      rcBind = sqlite3_bind_text(pStmt, 3, zOp, -1, SQLITE_STATIC);
    }
    if( rcBind==SQLITE_OK ) rcBind = sqlite3_bind_value(pStmt, 4, argv[2]);
    if( rcBind==SQLITE_OK ) rcBind = sqlite3_bind_value(pStmt, 5, argv[3]);
    if( rcBind==SQLITE_OK ){
      rcBind = sqlite3_bind_text(pStmt, 6, bImmediate ? SYNCQ_PRIORITY_IMMEDIATE
                                 : SYNCQ_PRIORITY_BATCHED, -1, SQLITE_STATIC);
    }
    if( rcBind==SQLITE_OK ){
      rcBind = sqlite3_bind_text(pStmt, 7, syncq_conn_apply_origin(pConn), -1,
                                 SQLITE_TRANSIENT);
    }
    if( rcBind==SQLITE_OK ) sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
    if( rcBind!=SQLITE_OK ) rc = rcBind;
  }
  sqlite3_free(zName);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_enqueue", rc,
                rc==SQLITE_NOMEM ? 0 : sqlite3_mprintf("%s", sqlite3_errmsg(db)));
    return;
  }
  sqlite3_result_int64(ctx, sqlite3_last_insert_rowid(db));
  sqlite3_set_last_insert_rowid(db, iLastRowid);
}

/*
** sync_trigger()
*/
static void syncTriggerFunc(sqlite3_context *ctx, int argc,
                            sqlite3_value **argv){
  (void)argc;
  (void)argv;
  sqlite3_result_int(ctx,
                     syncq_conn_wake((SyncqConn*)sqlite3_user_data(ctx)));
}

/*
** sync_node_id()
*/
static void syncNodeIdFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_stmt *pStmt = 0;
  char *zErr = 0;
  int rc;

  (void)argc;
  (void)argv;
  rc = syncq_ensure_schema(db, &zErr);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_node_id", rc, zErr);
    return;
  }
  rc = sqlite3_prepare_v2(db, "SELECT node_id FROM main.syncq_state", -1,
                          &pStmt, 0);
  if( rc==SQLITE_OK ){
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, 0));
    }
    rc = sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_node_id", rc,
                rc==SQLITE_NOMEM ? 0 : sqlite3_mprintf("%s", sqlite3_errmsg(db)));
  }
}

/* Is z a lower-case UUID (8-4-4-4-12 hex digits)? */
static int isUuid(const char *z){
  int i;
  for(i=0; i<36; i++){
    if( i==8 || i==13 || i==18 || i==23 ){
      if( z[i]!='-' ) return 0;
    }else if( !((z[i]>='0' && z[i]<='9') || (z[i]>='a' && z[i]<='f')) ){
      return 0;
    }
  }
  return z[36]==0;
}

/*
** sync_apply_origin(node_id)
*/
static void syncApplyOriginFunc(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  SyncqConn *pConn = (SyncqConn*)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zUuid = (const char*)sqlite3_value_text(argv[0]);

  (void)argc;
  if( sqlite3_get_autocommit(db) ){
    resultError(ctx, "sync_apply_origin", SQLITE_ERROR, sqlite3_mprintf(
        "call it inside the transaction that applies the changes"));
    return;
  }
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    syncq_conn_set_apply_origin(pConn, 0);
  }else if( zUuid==0 || !isUuid(zUuid) ){
    char *zShown = shownValue(argv[0]);
    resultError(ctx, "sync_apply_origin", SQLITE_ERROR, zShown==0 ? 0 :
        sqlite3_mprintf("bad node id %s: expected a lower-case UUID", zShown));
    sqlite3_free(zShown);
    return;
  }else{
    syncq_conn_set_apply_origin(pConn, zUuid);
  }
  sqlite3_result_value(ctx, argv[0]);
}

/*
** sync_reidentify(node_id)
*/
static void syncReidentifyFunc(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zUuid = (const char*)sqlite3_value_text(argv[0]);
  char *zErr = 0;
  int rc;

  (void)argc;
  if( zUuid==0 || !isUuid(zUuid) ){
    char *zShown = shownValue(argv[0]);
    resultError(ctx, "sync_reidentify", SQLITE_ERROR, zShown==0 ? 0 :
        sqlite3_mprintf("bad node id %s: expected a lower-case UUID", zShown));
    sqlite3_free(zShown);
    return;
  }
  rc = syncq_reidentify(db, zUuid, &zErr);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_reidentify", rc, zErr);
    return;
  }
  sqlite3_free(zErr);
  sqlite3_result_value(ctx, argv[0]);
}

/*
** is_online_server()
*/
static void isOnlineServerFunc(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv){
  (void)argc;
  (void)argv;
  sqlite3_result_int(ctx, 0);
}

/* Sets syncq_state.paused to bPaused; result 1 if it changed. */
static void setPaused(sqlite3_context *ctx, const char *zFunc, int bPaused){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_stmt *pStmt = 0;
  char *zErr = 0;
  int nChange = 0;
  int rc;

  rc = syncq_ensure_schema(db, &zErr);
  if( rc!=SQLITE_OK ){
    resultError(ctx, zFunc, rc, zErr);
    return;
  }
  rc = sqlite3_prepare_v2(db,
      "UPDATE main.syncq_state SET paused = ?1 WHERE paused IS NOT ?1",
      -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_bind_int(pStmt, 1, bPaused);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_DONE ){
      nChange = sqlite3_changes(db);
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    resultError(ctx, zFunc, rc,
                rc==SQLITE_NOMEM ? 0 : sqlite3_mprintf("%s", sqlite3_errmsg(db)));
    return;
  }
  sqlite3_result_int(ctx, nChange>0);
}

/*
** sync_pause(), sync_resume()
*/
static void syncPauseFunc(sqlite3_context *ctx, int argc,
                          sqlite3_value **argv){
  (void)argc;
  (void)argv;
  setPaused(ctx, "sync_pause", 1);
}
static void syncResumeFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  (void)argc;
  (void)argv;
  setPaused(ctx, "sync_resume", 0);
}

/*
** sync_repair()
*/
static void syncRepairFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_int64 iLastRowid = sqlite3_last_insert_rowid(db);
  char *zErr = 0;
  int nRepaired = 0;
  int rc;

  (void)argc;
  (void)argv;
  rc = syncq_repair(db, &nRepaired, &zErr);
  sqlite3_set_last_insert_rowid(db, iLastRowid);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_repair", rc, zErr);
    return;
  }
  sqlite3_free(zErr);
  sqlite3_result_int(ctx, nRepaired);
}

/*
** sync_fill()
*/
static void syncFillFunc(sqlite3_context *ctx, int argc,
                         sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_int64 iLastRowid = sqlite3_last_insert_rowid(db);
  sqlite3_int64 iUpto = 0;
  char *zErr = 0;
  int nFilled = 0;
  int nMax = 0;
  int rc;

  if( argc==1 ){
    if( sqlite3_value_type(argv[0])!=SQLITE_INTEGER
     || sqlite3_value_int64(argv[0])<1 || sqlite3_value_int64(argv[0])>1000000000 ){
      char *zMsg = sqlite3_mprintf("sync_fill: bad count \"%s\": expected a"
          " positive integer", sqlite3_value_text(argv[0]) ?
          (const char*)sqlite3_value_text(argv[0]) : "NULL");
      sqlite3_result_error(ctx, zMsg ? zMsg : "sync_fill: bad count", -1);
      sqlite3_free(zMsg);
      return;
    }
    nMax = (int)sqlite3_value_int64(argv[0]);
  }
  rc = syncq_fill(db, nMax, &iUpto, &nFilled, &zErr);
  sqlite3_set_last_insert_rowid(db, iLastRowid);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "sync_fill", rc, zErr);
    return;
  }
  sqlite3_free(zErr);
  sqlite3_result_int64(ctx, iUpto);
}

/*
** syncq_sums_watch()
*/
static void syncqSumsWatchFunc(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char *zErr = 0;
  int nTable = 0;
  int rc;

  (void)argc;
  (void)argv;
  rc = syncq_sums_watch(db, &nTable, &zErr);
  if( rc!=SQLITE_OK ){
    resultError(ctx, "syncq_sums_watch", rc, zErr);
    return;
  }
  sqlite3_free(zErr);
  sqlite3_result_int(ctx, nTable);
}

/*
** syncq_unhex(text): the blob written as hex digits by hex(); used by
** sync_fill() to find a row by a blob key ({"$hex": "..."} in the queue).
** NULL for NULL; an error naming the text if it is not hex digits.
*/
static void syncqUnhexFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  const unsigned char *z = sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  unsigned char *a;
  int i;

  (void)argc;
  if( z==0 ) return;
  if( n%2 ) goto bad;
  a = sqlite3_malloc64(n/2 + 1);
  if( a==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for(i=0; i<n; i+=2){
    int h[2];
    int k;
    for(k=0; k<2; k++){
      unsigned char c = z[i+k];
      if( c>='0' && c<='9' ) h[k] = c-'0';
      else if( c>='a' && c<='f' ) h[k] = c-'a'+10;
      else if( c>='A' && c<='F' ) h[k] = c-'A'+10;
      else{
        sqlite3_free(a);
        goto bad;
      }
    }
    a[i/2] = (unsigned char)(h[0]*16 + h[1]);
  }
  sqlite3_result_blob(ctx, a, n/2, sqlite3_free);
  return;
bad:
  {
    char *zMsg = sqlite3_mprintf("syncq_unhex: not hex digits: \"%s\"", z);
    sqlite3_result_error(ctx, zMsg ? zMsg : "syncq_unhex: not hex digits", -1);
    sqlite3_free(zMsg);
  }
}

/* Functions that change the database or the world outside it are
** SQLITE_DIRECTONLY: they cannot be smuggled into a trigger or view. */
#define SYNCQ_DIRECT (SQLITE_UTF8|SQLITE_DIRECTONLY)

int syncq_capture_register(sqlite3 *db, char **pzErrMsg){
  static const struct {
    const char *zName;
    int nArg;
    int eTextRep;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "sync_track",       1, SYNCQ_DIRECT, syncTrackFunc },
    { "sync_track",       2, SYNCQ_DIRECT, syncTrackFunc },
    { "sync_track",       3, SYNCQ_DIRECT, syncTrackFunc },
    { "sync_track",       4, SYNCQ_DIRECT, syncTrackFunc },
    { "sync_untrack",     1, SYNCQ_DIRECT, syncUntrackFunc },
    { "sync_enqueue",     4, SYNCQ_DIRECT, syncEnqueueFunc },
    { "sync_enqueue",     5, SYNCQ_DIRECT, syncEnqueueFunc },
    { "sync_trigger",     0, SYNCQ_DIRECT, syncTriggerFunc },
    { "sync_node_id",     0, SYNCQ_DIRECT, syncNodeIdFunc },
    { "sync_pause",       0, SYNCQ_DIRECT, syncPauseFunc },
    { "sync_resume",      0, SYNCQ_DIRECT, syncResumeFunc },
    { "sync_repair",      0, SYNCQ_DIRECT, syncRepairFunc },
    { "sync_fill",        0, SYNCQ_DIRECT, syncFillFunc },
    { "sync_fill",        1, SYNCQ_DIRECT, syncFillFunc },
    { "syncq_sums_watch", 0, SYNCQ_DIRECT, syncqSumsWatchFunc },
    { "syncq_unhex",      1, SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS,
                             syncqUnhexFunc },
    { "sync_apply_origin", 1, SYNCQ_DIRECT, syncApplyOriginFunc },
    { "sync_reidentify",  1, SYNCQ_DIRECT, syncReidentifyFunc },
    { "is_online_server", 0, SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS,
                             isOnlineServerFunc },
    /* Called by the capture triggers: must stay usable from the schema. */
    { "sqlite_compileoption_get", 1, SQLITE_UTF8|SQLITE_INNOCUOUS,
                             syncq_compileoption_get },
  };
  SyncqConn *pConn;
  int nDone = 0;
  int rc = SQLITE_OK;
  size_t i;

  pConn = syncq_conn_new(db);
  if( pConn==0 ) return SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<sizeof(aFunc)/sizeof(aFunc[0]); i++){
    syncq_conn_ref(pConn);   /* dropped by xDestroy, even on failure */
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg,
                                    aFunc[i].eTextRep, pConn, aFunc[i].xFunc,
                                    0, 0, syncq_conn_unref);
    if( rc==SQLITE_OK ) nDone++;
  }
  if( nDone>0 ) syncq_conn_install_hooks(pConn);
  syncq_conn_unref(pConn);
  if( rc==SQLITE_OK ){
    rc = syncq_rowsums_register(db);
    if( rc!=SQLITE_OK && pzErrMsg ){
      *pzErrMsg = sqlite3_mprintf("syncq: cannot register syncq_rowsum(): %s",
                                  sqlite3_errstr(rc));
    }
    return rc;
  }
  if( rc!=SQLITE_OK && pzErrMsg ){
    *pzErrMsg = sqlite3_mprintf("syncq: cannot register %s(): %s",
                                aFunc[i-1].zName, sqlite3_errstr(rc));
  }
  return rc;
}
