/*
** capture_triggers.c - the syncq tables and the capture triggers.
**
** sync_track(t) installs four ordinary schema triggers on table t:
**
**   "syncq_ins:t"  AFTER INSERT                 queues I
**   "syncq_upd:t"  AFTER UPDATE, same key       queues U
**   "syncq_key:t"  AFTER UPDATE, key changed    queues D (old key), I
**   "syncq_del:t"  AFTER DELETE                 queues D
**
** Their bodies use only SQL built into SQLite 3.38 and later (json_object,
** strftime, quote, hex, sqlite_compileoption_get), so every connection
** captures, whether or not it loaded syncq.  Per row each trigger reads
** syncq_state.paused (in its WHEN clause), the version floor and the
** newest queue row (for changed_at, a hybrid logical clock:
** SYNCQ_VERSION_EXPR) and inserts one queue row with VALUES; the node id
** is a literal in its text.  That text is a
** pure function of the table's columns and key, the priority and the node
** id, which is how sync_repair() finds stale triggers: it writes the SQL
** again and compares it with sqlite_schema.sql.
**
** Values reach row_data as docs/queue.md says: integers (64-bit) and text
** as json_object writes them; a real through quote() (15 significant
** digits when they read back exactly, else 20) and +-Infinity as strings;
** a blob as {"$hex":"0A1B"}.  appendValue() picks the cheapest test the
** column's declared type allows.
*/
#include "capture.h"

#include <stdarg.h>
#include <string.h>

/* The four triggers, by the word in their name. */
#define SYNCQ_N_TRIGGER 4
static const char *const azTriggerKind[SYNCQ_N_TRIGGER] = {
  "ins", "upd", "key", "del"
};

/* The syncq tables.  Created on first use, all IF NOT EXISTS.
**
** seq is the rowid.  SQLite gives a new row max(rowid)+1, so a seq could
** come back only if the row holding the largest seq were deleted; the
** trigger syncq_keep_newest ignores that one deletion, whoever asks.  The
** queue therefore always keeps its newest row, shipped or not; consumers
** remember what they shipped (docs/sqlite_capture.md).  Unlike
** AUTOINCREMENT this costs the capture nothing. */
static const char zSchemaSql[] =
  "CREATE TABLE IF NOT EXISTS main.sync_queue(\n"
  "  seq        INTEGER PRIMARY KEY,  -- never reused: see syncq_keep_newest\n"
  "  txid       INTEGER,              -- NULL unless the writer loaded syncq\n"
  "  table_name TEXT NOT NULL,\n"
  "  op         TEXT NOT NULL,        -- I, U or D\n"
  "  pk         TEXT NOT NULL,        -- JSON object of the key\n"
  "  row_data   TEXT,                 -- JSON object of the row; NULL for D\n"
  "  changed_at TEXT NOT NULL,        -- version: UTC YYYY-MM-DDTHH:MM:SS.ffffffZ\n"
  "  origin     TEXT NOT NULL,        -- node id where the change was made\n"
  "  priority   TEXT NOT NULL         -- immediate or batched\n"
  ");\n"
  "CREATE TABLE IF NOT EXISTS main.syncq_state(\n"
  "  id           INTEGER PRIMARY KEY CHECK (id = 1),\n"
  "  node_id      TEXT NOT NULL,      -- this database's node id\n"
  "  paused       INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),\n"
  "  filled_upto  INTEGER NOT NULL DEFAULT 0, -- queue rows up to here were filled\n"
  "  next         TEXT NOT NULL DEFAULT ''  -- no change is stamped lower:\n"
  "                                 -- syncqd raises it past what it applies\n"
  ");\n"
  "CREATE TABLE IF NOT EXISTS main.syncq_tracked(\n"
  "  table_name TEXT PRIMARY KEY COLLATE NOCASE,\n"
  "  priority   TEXT NOT NULL CHECK (priority IN ('immediate', 'batched')),\n"
  "  tracked_at TEXT NOT NULL,\n"
  "  columns    TEXT,                 -- JSON array: the columns the last repair saw\n"
  "  forms      TEXT,                 -- how syncqd writes values: NULL default\n"
  "  keys       TEXT NOT NULL DEFAULT 'auto'  -- the key policy: auto, hub, natural\n"
  "             CHECK (keys IN ('auto', 'hub', 'natural')),\n"
  "  summed     INTEGER NOT NULL DEFAULT 0  -- 1: syncq_rowsums covers its rows\n"
  ");\n"
  "CREATE TABLE IF NOT EXISTS main.syncq_rowsums(\n"
  "  table_name TEXT NOT NULL COLLATE NOCASE,\n"
  "  pk         TEXT NOT NULL,        -- the key, as the queue spells it\n"
  "  sum        BLOB NOT NULL,        -- syncq_rowsum() of the row syncq last saw\n"
  "  PRIMARY KEY(table_name, pk)\n"
  ") WITHOUT ROWID;\n"
  "CREATE TABLE IF NOT EXISTS main.syncq_columns_gone(\n"
  "  table_name  TEXT NOT NULL COLLATE NOCASE,\n"
  "  column_name TEXT NOT NULL,       -- a column the table had and has no more\n"
  "  renamed_to  TEXT,                -- its new name, or NULL: dropped\n"
  "  gone_at     TEXT NOT NULL,\n"
  "  PRIMARY KEY(table_name, column_name)\n"
  ");\n"
  "CREATE TABLE IF NOT EXISTS main.syncq_tables_renamed(\n"
  "  table_name  TEXT PRIMARY KEY COLLATE NOCASE,  -- a name a tracked table had\n"
  "  renamed_to  TEXT NOT NULL,       -- its name now (a chain points at the last)\n"
  "  renamed_at  TEXT NOT NULL\n"
  ");\n"
  "CREATE TRIGGER IF NOT EXISTS main.syncq_keep_newest\n"
  "BEFORE DELETE ON sync_queue\n"
  "WHEN old.seq = (SELECT max(seq) FROM sync_queue)\n"
  "BEGIN\n"
  "  SELECT RAISE(IGNORE);  -- the newest row stays, so its seq is never reused\n"
  "END;\n"
  "CREATE TRIGGER IF NOT EXISTS main.syncq_node_id_fixed\n"
  "BEFORE UPDATE OF node_id ON syncq_state\n"
  "WHEN NEW.node_id IS NOT OLD.node_id\n"
  "BEGIN\n"
  "  SELECT RAISE(ABORT, 'syncq: the capture triggers hold the node id;"
  " change it with sync_reidentify(uuid)');\n"
  "END;\n"
  "CREATE TABLE IF NOT EXISTS main.syncq_schema(\n"
  "  id      INTEGER PRIMARY KEY CHECK (id = 1),\n"
  "  version INTEGER NOT NULL,        -- SYNCQ_SCHEMA_VERSION of the tables\n"
  "  release TEXT NOT NULL            -- the syncq release that wrote them\n"
  ");\n";

/* Number of objects of zSchemaSql, and a query that counts those present. */
#define SYNCQ_N_SCHEMA 9
static const char zSchemaCountSql[] =
  "SELECT count(*) FROM main.sqlite_schema WHERE name IN"
  " ('sync_queue', 'syncq_state', 'syncq_tracked', 'syncq_keep_newest',"
  " 'syncq_node_id_fixed', 'syncq_schema', 'syncq_columns_gone',"
  " 'syncq_tables_renamed', 'syncq_rowsums')";

/* One column of a tracked table. */
typedef struct SyncqCol SyncqCol;
struct SyncqCol {
  char *zName;            /* column name, as declared */
  char *zType;            /* declared type ("" if none) */
};

/* What the trigger writer needs to know about a table. */
typedef struct SyncqTable SyncqTable;
struct SyncqTable {
  char *zName;            /* name as in sqlite_schema */
  int nCol;               /* number of stored columns (generated ones left out) */
  SyncqCol *aCol;         /* the columns, in table order */
  int nPk;                /* number of primary key columns */
  int *aiPk;              /* aCol index of each key column, in key order */
  int bStrict;            /* a STRICT table: declared types are enforced */
  int iRowidPk;           /* aCol index of an INTEGER PRIMARY KEY, or -1 */
  char *zNode;            /* this node's id, written into the triggers */
};

/* ----------------------------------------------------------------------
** Small helpers.
*/

/* Runs SQL made from a printf format (%w, %Q, ...).  On failure sets
** *pzErr to SQLite's message. */
static int execPrintf(sqlite3 *db, char **pzErr, const char *zFmt, ...){
  va_list ap;
  char *zSql;
  int rc;
  va_start(ap, zFmt);
  zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}

/* Sets *pzErr to a message made from a printf format; returns rc. */
static int setError(char **pzErr, int rc, const char *zFmt, ...){
  va_list ap;
  if( pzErr ){
    sqlite3_free(*pzErr);
    va_start(ap, zFmt);
    *pzErr = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
  }
  return rc;
}

/* Copies SQLite's current error message into *pzErr; returns rc. */
static int setDbError(sqlite3 *db, char **pzErr, int rc){
  if( rc==SQLITE_NOMEM ) return rc;
  return setError(pzErr, rc, "%s", sqlite3_errmsg(db));
}

/* Opens savepoint zName. */
static int savepointBegin(sqlite3 *db, const char *zName, char **pzErr){
  return execPrintf(db, pzErr, "SAVEPOINT \"%w\"", zName);
}

/* Releases savepoint zName, after rolling back to it if rc is an error.
** Returns rc, or the error of the release itself. */
static int savepointEnd(sqlite3 *db, const char *zName, int rc,
                        char **pzErr){
  int rc2;
  if( rc!=SQLITE_OK ){
    execPrintf(db, 0, "ROLLBACK TO \"%w\"", zName);
    execPrintf(db, 0, "RELEASE \"%w\"", zName);
    return rc;
  }
  rc2 = execPrintf(db, pzErr, "RELEASE \"%w\"", zName);
  return rc2;
}

/* Turns the error state of a finished sqlite3_str into a result code. */
static int strDone(sqlite3_str *pStr, char **pzOut){
  int rc = sqlite3_str_errcode(pStr);
  char *z = sqlite3_str_finish(pStr);
  if( rc!=SQLITE_OK ){
    sqlite3_free(z);
    *pzOut = 0;
    return rc==SQLITE_TOOBIG ? SQLITE_TOOBIG : SQLITE_NOMEM;
  }
  if( z==0 ){
    z = sqlite3_mprintf("");
    if( z==0 ) return SQLITE_NOMEM;
  }
  *pzOut = z;
  return SQLITE_OK;
}

/* A new lower-case version 4 UUID in zBuf (37 bytes). */
static void makeUuid(char zBuf[37]){
  static const char zHex[] = "0123456789abcdef";
  unsigned char a[16];
  int i, j;
  sqlite3_randomness(sizeof a, a);
  a[6] = (unsigned char)((a[6] & 0x0f) | 0x40);
  a[8] = (unsigned char)((a[8] & 0x3f) | 0x80);
  for(i=j=0; i<16; i++){
    if( i==4 || i==6 || i==8 || i==10 ) zBuf[j++] = '-';
    zBuf[j++] = zHex[a[i]>>4];
    zBuf[j++] = zHex[a[i]&0x0f];
  }
  zBuf[j] = 0;
}

/* ----------------------------------------------------------------------
** The syncq tables.
*/

/* ----------------------------------------------------------------------
** The version of the syncq tables, and their migrations.
**
** syncq_schema holds the SYNCQ_SCHEMA_VERSION that last brought a file's
** syncq tables (and syncqd's, which live beside them) up to date.  A file
** of syncq 0.1.0 has no syncq_schema: it is schema 1.  syncq_ensure_schema()
** runs before anything reads or writes those tables (every function of the
** extension that touches them, and syncqd when it opens the file), and
** migrates an older file in one savepoint, keeping queued changes and
** positions; the capture triggers are then rewritten as this version
** writes them.  A file of a newer schema is refused, naming both versions.
*/

/* Migrations: aMigrate[i] takes schema i+1 to schema i+2.  Each is run in
** the savepoint of syncq_ensure_schema(), before the triggers are
** rewritten.  syncqd's tables may be missing (a file never synced): a step
** that changes them must check. */
static int migrate1to2(sqlite3 *db, char **pzErr){
  /* 0.1.0 -> 0.2.0: the triggers queue the key only (rewritten after the
  ** last step); syncq_fill() reads the rows and remembers how far it got;
  ** the repair remembers each table's columns (syncq_columns_gone, made by
  ** zSchemaSql, holds those that went) and the names a tracked table had
  ** (syncq_tables_renamed, made by zSchemaSql too); syncq_tracked.forms
  ** holds the value forms of a table (sync_track's fourth argument).
  ** Versions are hybrid logical clocks in microseconds
  ** (docs/replication.md, Versions): syncq_state.next holds the floor
  ** syncqd raises, and the queue's millisecond changed_at texts take the
  ** microsecond form, so that the capture's max() of texts compares like
  ** with like. */
  int rc = execPrintf(db, pzErr,
      "ALTER TABLE main.syncq_state ADD COLUMN"
      " filled_upto INTEGER NOT NULL DEFAULT 0");
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "ALTER TABLE main.syncq_state ADD COLUMN next TEXT NOT NULL DEFAULT ''");
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "UPDATE main.sync_queue SET changed_at = substr(changed_at, 1, 23) || '000Z'"
        " WHERE changed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T"
        "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'");
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "ALTER TABLE main.syncq_tracked ADD COLUMN columns TEXT");
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "ALTER TABLE main.syncq_tracked ADD COLUMN forms TEXT");
  }
  if( rc==SQLITE_OK ){
    /* Rows the 0.1.0 triggers queued carry their row already. */
    rc = execPrintf(db, pzErr,
        "UPDATE main.syncq_state SET filled_upto ="
        " coalesce((SELECT max(seq) FROM main.sync_queue), 0)");
  }
  return rc;
}

static int migrate2to3(sqlite3 *db, char **pzErr){
  /* A key policy per tracked table (sync_track's third argument, as on
  ** the hub; docs/replication.md, Keys the hub assigns). */
  return execPrintf(db, pzErr,
      "ALTER TABLE main.syncq_tracked ADD COLUMN keys TEXT NOT NULL"
      " DEFAULT 'auto' CHECK (keys IN ('auto', 'hub', 'natural'))");
}

static int migrate3to4(sqlite3 *db, char **pzErr){
  /* Row sums (capture_rowsums.c; syncq_rowsums is made by zSchemaSql): the
  ** repair after this step fills them for every tracked table, without
  ** judging (there is nothing to judge against yet). */
  return execPrintf(db, pzErr,
      "ALTER TABLE main.syncq_tracked ADD COLUMN summed INTEGER NOT NULL"
      " DEFAULT 0");
}

static int (*const aMigrate[])(sqlite3*, char**) = {
  migrate1to2,
  migrate2to3,
  migrate3to4,
};

/* Reads the file's schema version into *piVersion: 0 if syncq_schema has
** no row. */
static int schemaVersion(sqlite3 *db, int *piVersion, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc;
  *piVersion = 0;
  rc = sqlite3_prepare_v2(db, "SELECT version FROM main.syncq_schema", -1,
                          &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *piVersion = sqlite3_column_int(pStmt, 0);
  }
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  return SQLITE_OK;
}

/* Refuses a file whose syncq tables are newer than this syncq. */
static int refuseNewer(sqlite3 *db, int iVersion, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char *zRelease = 0;
  int rc;
  rc = sqlite3_prepare_v2(db, "SELECT release FROM main.syncq_schema", -1,
                          &pStmt, 0);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    zRelease = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
  }
  sqlite3_finalize(pStmt);
  rc = setError(pzErr, SQLITE_MISMATCH,
      "this database's syncq tables were written by syncq %s (schema %d),"
      " newer than this syncq %s (schema %d): upgrade syncq (the extension"
      " and syncqd) to use it", zRelease ? zRelease : "?", iVersion,
      SYNCQ_VERSION, SYNCQ_SCHEMA_VERSION);
  sqlite3_free(zRelease);
  return rc;
}

/* Brings the syncq tables from schema iFrom to SYNCQ_SCHEMA_VERSION, inside
** the caller's savepoint, and rewrites the capture triggers. */
static int migrate(sqlite3 *db, int iFrom, char **pzErr){
  int nRepaired = 0;
  int rc = SQLITE_OK;
  int i;
  for(i=iFrom; rc==SQLITE_OK && i<SYNCQ_SCHEMA_VERSION; i++){
    rc = aMigrate[i-1](db, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "INSERT INTO main.syncq_schema(id, version, release) VALUES(1, %d, %Q)"
        " ON CONFLICT(id) DO UPDATE SET version = excluded.version,"
        " release = excluded.release", SYNCQ_SCHEMA_VERSION, SYNCQ_VERSION);
  }
  if( rc==SQLITE_OK && iFrom<SYNCQ_SCHEMA_VERSION ){
    rc = syncq_repair(db, &nRepaired, pzErr);
  }
  return rc;
}

/* Creates the syncq tables and this node's id unless they exist, and
** migrates those of an older syncq (see above). */
int syncq_ensure_schema(sqlite3 *db, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int nHave = 0;
  int bQueue = 0;
  int iVersion = 0;
  int rc;
  char zUuid[37];

  typedef char assertMigrations[
      sizeof(aMigrate)/sizeof(aMigrate[0])==SYNCQ_SCHEMA_VERSION-1 ? 1 : -1];
  (void)sizeof(assertMigrations);

  rc = sqlite3_prepare_v2(db, zSchemaCountSql, -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( sqlite3_step(pStmt)==SQLITE_ROW ) nHave = sqlite3_column_int(pStmt, 0);
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( nHave==SYNCQ_N_SCHEMA ){
    /* Tables present; the state row may still be missing (deleted). */
    rc = sqlite3_prepare_v2(db, "SELECT 1 FROM main.syncq_state WHERE id = 1",
                            -1, &pStmt, 0);
    if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
    nHave += sqlite3_step(pStmt)==SQLITE_ROW;
    rc = sqlite3_finalize(pStmt);
    if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
    if( nHave>SYNCQ_N_SCHEMA ){
      rc = schemaVersion(db, &iVersion, pzErr);
      if( rc!=SQLITE_OK || iVersion==SYNCQ_SCHEMA_VERSION ) return rc;
      if( iVersion>SYNCQ_SCHEMA_VERSION ) return refuseNewer(db, iVersion, pzErr);
    }
  }

  /* A sync_queue without syncq_schema is the file of syncq 0.1.0. */
  rc = sqlite3_prepare_v2(db,
      "SELECT (SELECT count(*) FROM main.sqlite_schema"
      "        WHERE type = 'table' AND name = 'sync_queue'),"
      "       (SELECT count(*) FROM main.sqlite_schema"
      "        WHERE type = 'table' AND name = 'syncq_schema')", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    bQueue = sqlite3_column_int(pStmt, 0) && !sqlite3_column_int(pStmt, 1);
  }
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);

  rc = savepointBegin(db, "syncq_schema", pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_exec(db, zSchemaSql, 0, 0, pzErr);
  if( rc==SQLITE_OK ){
    makeUuid(zUuid);
    rc = execPrintf(db, pzErr,
        "INSERT OR IGNORE INTO main.syncq_state(id, node_id) VALUES(1, %Q)",
        zUuid);
  }
  if( rc==SQLITE_OK ) rc = schemaVersion(db, &iVersion, pzErr);
  if( rc==SQLITE_OK && iVersion==0 ){
    iVersion = bQueue ? 1 : SYNCQ_SCHEMA_VERSION;
  }
  if( rc==SQLITE_OK && iVersion>SYNCQ_SCHEMA_VERSION ){
    rc = refuseNewer(db, iVersion, pzErr);
  }
  if( rc==SQLITE_OK ) rc = migrate(db, iVersion, pzErr);
  return savepointEnd(db, "syncq_schema", rc, pzErr);
}

/* ----------------------------------------------------------------------
** Reading a table's shape.
*/

/* Finds table zTable (unquoted, any ASCII case) in main.  On success
** *pzName is its name as in sqlite_schema (sqlite3_malloc'd).  Returns
** SQLITE_NOTFOUND if there is no such table, SQLITE_MISMATCH if it is
** not a table syncq can track (view, virtual, internal, syncq's own). */
int syncq_resolve_table(sqlite3 *db, const char *zTable, char **pzName,
                        char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc;
  char *zName = 0;
  char *zType = 0;
  int bVirtual = 0;

  *pzName = 0;
  rc = sqlite3_prepare_v2(db,
      "SELECT name, type, sql LIKE 'CREATE VIRTUAL%' FROM main.sqlite_schema"
      " WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE",
      -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  rc = sqlite3_bind_text(pStmt, 1, zTable, -1, SQLITE_STATIC);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    zName = sqlite3_mprintf("%s", (const char*)sqlite3_column_text(pStmt, 0));
    zType = sqlite3_mprintf("%s", (const char*)sqlite3_column_text(pStmt, 1));
    bVirtual = sqlite3_column_int(pStmt, 2);
    if( zName==0 || zType==0 ) rc = SQLITE_NOMEM;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = setDbError(db, pzErr, sqlite3_errcode(db));
  }
  if( rc==SQLITE_OK ){
    if( zName==0 ){
      rc = setError(pzErr, SQLITE_NOTFOUND, "no such table: \"%s\"", zTable);
    }else if( strcmp(zType, "view")==0 ){
      rc = setError(pzErr, SQLITE_MISMATCH,
                    "\"%s\" is a view, not a table", zName);
    }else if( bVirtual ){
      rc = setError(pzErr, SQLITE_MISMATCH,
                    "\"%s\" is a virtual table", zName);
    }else if( sqlite3_strnicmp(zName, "sqlite_", 7)==0 ){
      rc = setError(pzErr, SQLITE_MISMATCH,
                    "\"%s\" is an SQLite internal table", zName);
    }else if( sqlite3_stricmp(zName, SYNCQ_QUEUE_TABLE)==0
           || sqlite3_strnicmp(zName, "syncq_", 6)==0 ){
      rc = setError(pzErr, SQLITE_MISMATCH, "\"%s\" is a syncq table", zName);
    }
  }
  sqlite3_free(zType);
  if( rc!=SQLITE_OK ){
    sqlite3_free(zName);
    return rc;
  }
  *pzName = zName;
  return SQLITE_OK;
}

/* Frees what tableLoad() allocated. */
static void tableClear(SyncqTable *pTab){
  int i;
  for(i=0; i<pTab->nCol; i++){
    sqlite3_free(pTab->aCol[i].zName);
    sqlite3_free(pTab->aCol[i].zType);
  }
  sqlite3_free(pTab->aCol);
  sqlite3_free(pTab->aiPk);
  sqlite3_free(pTab->zName);
  sqlite3_free(pTab->zNode);
  memset(pTab, 0, sizeof(*pTab));
}

/* Reads the columns and key of table zName (a name from sqlite_schema).
** A table without a primary key is an error of its own (SQLITE_MISMATCH:
** not a table syncq can track, as for syncq_resolve_table()). */
static int tableLoad(sqlite3 *db, const char *zName, SyncqTable *pTab,
                     char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc;
  int nAlloc = 0;
  int bWithoutRowid = 0;
  int i;

  memset(pTab, 0, sizeof(*pTab));
  pTab->iRowidPk = -1;
  pTab->zName = sqlite3_mprintf("%s", zName);
  if( pTab->zName==0 ) return SQLITE_NOMEM;

  rc = sqlite3_prepare_v2(db, "SELECT node_id FROM main.syncq_state",
                          -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) goto load_db_error;
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    pTab->zNode = sqlite3_mprintf("%s",
                                  (const char*)sqlite3_column_text(pStmt, 0));
  }
  rc = sqlite3_finalize(pStmt);
  pStmt = 0;
  if( rc!=SQLITE_OK ) goto load_db_error;
  if( pTab->zNode==0 ){
    tableClear(pTab);
    return setError(pzErr, SQLITE_ERROR, "syncq_state holds no node id");
  }

  rc = sqlite3_prepare_v2(db,
      "SELECT wr, strict FROM pragma_table_list(?1) WHERE schema = 'main'",
      -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) goto load_db_error;
  rc = sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(pStmt);
    goto load_db_error;
  }
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    bWithoutRowid = sqlite3_column_int(pStmt, 0);
    pTab->bStrict = sqlite3_column_int(pStmt, 1);
  }
  rc = sqlite3_finalize(pStmt);
  pStmt = 0;
  if( rc!=SQLITE_OK ) goto load_db_error;

  /* Stored columns in table order; generated columns (hidden 2, 3) are
  ** computed by every replica, so they are not shipped. */
  rc = sqlite3_prepare_v2(db,
      "SELECT name, type, pk FROM pragma_table_xinfo(?1, 'main')"
      " WHERE hidden = 0 ORDER BY cid", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) goto load_db_error;
  rc = sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(pStmt);
    goto load_db_error;
  }
  while( sqlite3_step(pStmt)==SQLITE_ROW ){
    SyncqCol *pCol;
    int iPk = sqlite3_column_int(pStmt, 2);
    if( pTab->nCol>=nAlloc ){
      int nNew = nAlloc ? nAlloc*2 : 16;
      SyncqCol *aNew = sqlite3_realloc64(pTab->aCol, sizeof(SyncqCol)*nNew);
      int *aiNew = sqlite3_realloc64(pTab->aiPk, sizeof(int)*nNew);
      if( aNew ) pTab->aCol = aNew;
      if( aiNew ) pTab->aiPk = aiNew;
      if( aNew==0 || aiNew==0 ){ rc = SQLITE_NOMEM; break; }
      for(i=nAlloc; i<nNew; i++) pTab->aiPk[i] = -1;
      nAlloc = nNew;
    }
    pCol = &pTab->aCol[pTab->nCol];
    pCol->zName = sqlite3_mprintf("%s",
                                  (const char*)sqlite3_column_text(pStmt, 0));
    pCol->zType = sqlite3_mprintf("%s",
                                  (const char*)sqlite3_column_text(pStmt, 1));
    pTab->nCol++;
    if( pCol->zName==0 || pCol->zType==0 ){ rc = SQLITE_NOMEM; break; }
    if( iPk>0 && iPk<=nAlloc ){
      pTab->aiPk[iPk-1] = pTab->nCol-1;
      if( iPk>pTab->nPk ) pTab->nPk = iPk;
    }
  }
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(pStmt);
    tableClear(pTab);
    return rc;
  }
  rc = sqlite3_finalize(pStmt);
  pStmt = 0;
  if( rc!=SQLITE_OK ) goto load_db_error;

  if( pTab->nPk==0 ){
    rc = setError(pzErr, SQLITE_MISMATCH,
                  "table \"%s\" has no primary key", zName);
    tableClear(pTab);
    return rc;
  }

  /* A single-column key of a rowid table with no automatic index is the
  ** rowid itself (INTEGER PRIMARY KEY): its value is always an integer. */
  if( pTab->nPk==1 && !bWithoutRowid ){
    int nPkIndex = 1;
    rc = sqlite3_prepare_v2(db,
        "SELECT count(*) FROM pragma_index_list(?1, 'main') WHERE origin = 'pk'",
        -1, &pStmt, 0);
    if( rc!=SQLITE_OK ) goto load_db_error;
    rc = sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      nPkIndex = sqlite3_column_int(pStmt, 0);
    }
    if( rc!=SQLITE_OK ){
      sqlite3_finalize(pStmt);
      goto load_db_error;
    }
    rc = sqlite3_finalize(pStmt);
    pStmt = 0;
    if( rc!=SQLITE_OK ) goto load_db_error;
    if( nPkIndex==0 ) pTab->iRowidPk = pTab->aiPk[0];
  }
  for(i=0; i<pTab->nPk; i++){
    if( pTab->aiPk[i]<0 || pTab->aiPk[i]>=pTab->nCol ){
      tableClear(pTab);
      return setError(pzErr, SQLITE_INTERNAL,
                      "cannot read the primary key of \"%s\"", zName);
    }
  }
  return SQLITE_OK;

load_db_error:
  rc = setDbError(db, pzErr, rc);
  tableClear(pTab);
  return rc;
}

/* ----------------------------------------------------------------------
** Writing the trigger SQL.
*/

/* Does zType contain zSub, ignoring ASCII case? */
static int typeHas(const char *zType, const char *zSub){
  int n = (int)strlen(zSub);
  for(; *zType; zType++){
    if( sqlite3_strnicmp(zType, zSub, n)==0 ) return 1;
  }
  return 0;
}

/* The affinity SQLite gives a column of declared type zType (the rules of
** "Determination Of Column Affinity"): 'i'nteger, 't'ext, 'b'lob (none),
** 'r'eal or 'n'umeric. */
static char typeAffinity(const char *zType){
  if( typeHas(zType, "INT") ) return 'i';
  if( typeHas(zType, "CHAR") || typeHas(zType, "CLOB")
   || typeHas(zType, "TEXT") ) return 't';
  if( zType[0]==0 || typeHas(zType, "BLOB") ) return 'b';
  if( typeHas(zType, "REAL") || typeHas(zType, "FLOA")
   || typeHas(zType, "DOUB") ) return 'r';
  return 'n';
}

/* Appends the JSON value of column iCol of row zRef (NEW, OLD or an alias)
** as an argument of json_object().  Integers, text and NULL go as they
** are; a real through quote() (and json(), so that it stays a number);
** +-Infinity as strings; a blob as {"$hex": "..."}.  The test is as cheap
** as the column allows: none for the INTEGER PRIMARY KEY or a STRICT
** INTEGER/TEXT column; one comparison for a TEXT-affinity column (which
** holds only text, blobs and NULL) and, for an integer in an INTEGER or
** NUMERIC column, CAST(v AS INTEGER) = v; typeof() for everything else. */
static void appendValue(sqlite3_str *pStr, const SyncqTable *pTab, int iCol,
                        const char *zRef){
  const SyncqCol *pCol = &pTab->aCol[iCol];
  const char *zCol = pCol->zName;
  const char *zType = pCol->zType;
  int bStrict = pTab->bStrict;

  if( iCol==pTab->iRowidPk
   || (bStrict && (sqlite3_stricmp(zType, "INTEGER")==0
                || sqlite3_stricmp(zType, "INT")==0
                || sqlite3_stricmp(zType, "TEXT")==0)) ){
    sqlite3_str_appendf(pStr, "%s.\"%w\"", zRef, zCol);
  }else if( bStrict && sqlite3_stricmp(zType, "REAL")==0 ){
    sqlite3_str_appendf(pStr,
        "json(CASE WHEN %s.\"%w\" IS NULL THEN 'null'"
        " WHEN %s.\"%w\" = 9e999 THEN '\"Infinity\"'"
        " WHEN %s.\"%w\" = -9e999 THEN '\"-Infinity\"'"
        " ELSE quote(%s.\"%w\") END)",
        zRef, zCol, zRef, zCol, zRef, zCol, zRef, zCol);
  }else if( bStrict && sqlite3_stricmp(zType, "BLOB")==0 ){
    sqlite3_str_appendf(pStr,
        "CASE WHEN %s.\"%w\" IS NOT NULL"
        " THEN json_object('" SYNCQ_BLOB_TAG "', hex(%s.\"%w\")) END",
        zRef, zCol, zRef, zCol);
  }else if( !bStrict && typeAffinity(zType)=='t' ){
    /* Only blobs sort at or above x''; NULL compares as NULL. */
    sqlite3_str_appendf(pStr,
        "CASE WHEN %s.\"%w\" >= x'' THEN json_object('" SYNCQ_BLOB_TAG "', hex(%s.\"%w\"))"
        " ELSE %s.\"%w\" END",
        zRef, zCol, zRef, zCol, zRef, zCol);
  }else{
    if( !bStrict && (typeAffinity(zType)=='i' || typeAffinity(zType)=='n') ){
      /* Mostly integers: they pass one comparison, the rest go on. */
      sqlite3_str_appendf(pStr,
          "CASE WHEN CAST(%s.\"%w\" AS INTEGER) = %s.\"%w\" THEN %s.\"%w\""
          " ELSE ", zRef, zCol, zRef, zCol, zRef, zCol);
    }
    sqlite3_str_appendf(pStr,
        "CASE typeof(%s.\"%w\")"
        " WHEN 'real' THEN json(CASE %s.\"%w\" WHEN 9e999 THEN '\"Infinity\"'"
        " WHEN -9e999 THEN '\"-Infinity\"' ELSE quote(%s.\"%w\") END)"
        " WHEN 'blob' THEN json_object('" SYNCQ_BLOB_TAG "', hex(%s.\"%w\"))"
        " ELSE %s.\"%w\" END",
        zRef, zCol, zRef, zCol, zRef, zCol, zRef, zCol, zRef, zCol);
    if( !bStrict && (typeAffinity(zType)=='i' || typeAffinity(zType)=='n') ){
      sqlite3_str_appendall(pStr, " END");
    }
  }
}

/* A call of a SQL function takes at most SQLITE_MAX_FUNCTION_ARG
** arguments, 127 by default: a json_object() or json_array() of more is
** written as several calls of at most this many, in parts (appendPartStart
** and appendPartEnd), whose texts are joined into one. */
#define JSON_PART_ARGS 126

/* Opens part iPart of nPart of a call of zFunc (json_object or json_array).
** One part is the call itself.  Of more, the first keeps its text but the
** closing '}' or ']', the last all but the opening one, the others neither,
** joined with ',': the text of the one call that would hold them all. */
static void appendPartStart(sqlite3_str *pStr, const char *zFunc, int iPart,
                            int nPart){
  if( nPart==1 ){
    sqlite3_str_appendf(pStr, "%s(", zFunc);
  }else if( iPart==0 ){
    sqlite3_str_appendf(pStr, "(substr(%s(", zFunc);
  }else if( iPart<nPart-1 ){
    sqlite3_str_appendf(pStr, " || ',' || substr(substr(%s(", zFunc);
  }else{
    sqlite3_str_appendf(pStr, " || ',' || substr(%s(", zFunc);
  }
}

/* Closes part iPart of nPart (appendPartStart).  substr(X, -1, -N) is the
** N characters before the last one of X: all of them, for N as large. */
static void appendPartEnd(sqlite3_str *pStr, int iPart, int nPart){
  if( nPart==1 ){
    sqlite3_str_appendall(pStr, ")");
  }else if( iPart==0 ){
    sqlite3_str_appendall(pStr, "), -1, -2147483647)");
  }else if( iPart<nPart-1 ){
    sqlite3_str_appendall(pStr, "), 2), -1, -2147483647)");
  }else{
    sqlite3_str_appendall(pStr, "), 2))");
  }
}

/* The number of parts of a call of nItem items of nArg arguments each. */
static int partCount(int nItem, int nArg){
  int nPer = JSON_PART_ARGS/nArg;
  return nItem>0 ? (nItem+nPer-1)/nPer : 1;
}

/* Appends json_object(...) of the key (bKeyOnly) or every column of row
** zRef; zSep goes between the pairs.  A table of more columns than one
** call takes gets the same text from several (appendPartStart). */
static void appendObject(sqlite3_str *pStr, const SyncqTable *pTab,
                         const char *zRef, int bKeyOnly, const char *zSep){
  int n = bKeyOnly ? pTab->nPk : pTab->nCol;
  int nPer = JSON_PART_ARGS/2, nPart = partCount(n, 2);
  int i, p;
  for(p=0; p<nPart; p++){
    appendPartStart(pStr, "json_object", p, nPart);
    for(i=p*nPer; i<n && i<(p+1)*nPer; i++){
      int iCol = bKeyOnly ? pTab->aiPk[i] : i;
      if( i>p*nPer ) sqlite3_str_appendall(pStr, zSep);
      sqlite3_str_appendf(pStr, "%Q, ", pTab->aCol[iCol].zName);
      appendValue(pStr, pTab, iCol, zRef);
    }
    appendPartEnd(pStr, p, nPart);
  }
}

/* Appends the txid expression for a change of the given priority. */
static void appendTxid(sqlite3_str *pStr, const char *zPriority){
  sqlite3_str_appendf(pStr, "sqlite_compileoption_get(%d)",
      strcmp(zPriority, SYNCQ_PRIORITY_IMMEDIATE)==0 ? SYNCQ_TXID_IMMEDIATE
                                        : SYNCQ_TXID_BATCHED);
}

/* Appends the origin expression: the node id syncqd set on its own
** connection while it applies another node's changes, else this node's. */
static void appendOrigin(sqlite3_str *pStr, const SyncqTable *pTab){
  sqlite3_str_appendf(pStr, "coalesce(sqlite_compileoption_get(%d), %Q)",
                      SYNCQ_APPLY_ORIGIN, pTab->zNode);
}

/* Appends one INSERT INTO sync_queue statement of a trigger body: op zOp,
** key from row zPkRef.  row_data is left NULL: the triggers name only the
** key columns (so that ALTER TABLE DROP COLUMN, which refuses to drop a
** column a trigger names, works on a tracked table), and syncq_fill()
** reads the row from the table before syncqd ships it.  seq is left to
** SQLite (max(seq)+1), so the statement reads no table. */
static void appendQueueInsert(sqlite3_str *pStr, const SyncqTable *pTab,
                              const char *zPriority, const char *zOp,
                              const char *zPkRef){
  sqlite3_str_appendall(pStr,
      "  INSERT INTO sync_queue(txid, table_name, op, pk, row_data,"
      " changed_at, origin, priority)\n"
      "  VALUES(");
  appendTxid(pStr, zPriority);
  sqlite3_str_appendf(pStr, ", %Q, %Q,\n    ", pTab->zName, zOp);
  appendObject(pStr, pTab, zPkRef, 1, ", ");
  sqlite3_str_appendf(pStr, ", NULL,\n    %s, ", SYNCQ_VERSION_EXPR);
  appendOrigin(pStr, pTab);
  sqlite3_str_appendf(pStr, ", %Q);\n", zPriority);
}

/* Appends the key comparison of OLD and NEW: "all key columns equal"
** (bChanged==0) or "some key column differs".  BINARY, so that a key
** whose bytes change is a key change even under a NOCASE collation. */
static void appendKeyTest(sqlite3_str *pStr, const SyncqTable *pTab,
                          int bChanged){
  int i;
  if( bChanged ) sqlite3_str_appendall(pStr, "(");
  for(i=0; i<pTab->nPk; i++){
    const char *zCol = pTab->aCol[pTab->aiPk[i]].zName;
    if( i ) sqlite3_str_appendall(pStr, bChanged ? " OR " : " AND ");
    sqlite3_str_appendf(pStr, "OLD.\"%w\" IS%s NEW.\"%w\" COLLATE BINARY",
                        zCol, bChanged ? " NOT" : "", zCol);
  }
  if( bChanged ) sqlite3_str_appendall(pStr, ")");
}

/* The trigger of kind iKind for table pTab, as sqlite_schema.sql holds it
** ("CREATE TRIGGER \"syncq_ins:t\" AFTER ...").  *pzSql is
** sqlite3_malloc'd. */
static int triggerSql(const SyncqTable *pTab, const char *zPriority,
                      int iKind, char **pzSql){
  static const char zLive[] = "(SELECT paused FROM syncq_state) IS NOT 1";
  sqlite3_str *pStr = sqlite3_str_new(0);
  const char *zKind = azTriggerKind[iKind];

  sqlite3_str_appendf(pStr, "CREATE TRIGGER \"syncq_%s:%w\"\n", zKind,
                      pTab->zName);
  switch( iKind ){
    case 0:
      sqlite3_str_appendf(pStr, "AFTER INSERT ON \"%w\"\nWHEN %s\n",
                          pTab->zName, zLive);
      break;
    case 1:
    case 2:
      sqlite3_str_appendf(pStr, "AFTER UPDATE ON \"%w\"\nWHEN ", pTab->zName);
      appendKeyTest(pStr, pTab, iKind==2);
      sqlite3_str_appendf(pStr, "\n  AND %s\n", zLive);
      break;
    default:
      sqlite3_str_appendf(pStr, "AFTER DELETE ON \"%w\"\nWHEN %s\n",
                          pTab->zName, zLive);
      break;
  }
  sqlite3_str_appendf(pStr,
      "BEGIN\n"
      "  -- syncq capture, written by sync_track(): docs/sqlite_capture.md.\n"
      "  -- sqlite_compileoption_get(%d) is the txid and (%d) the origin syncqd\n"
      "  -- applies for; both NULL in a connection that did not load syncq.\n",
      strcmp(zPriority, SYNCQ_PRIORITY_IMMEDIATE)==0 ? SYNCQ_TXID_IMMEDIATE
                                        : SYNCQ_TXID_BATCHED,
      SYNCQ_APPLY_ORIGIN);
  switch( iKind ){
    case 0:  appendQueueInsert(pStr, pTab, zPriority, "I", "NEW"); break;
    case 1:  appendQueueInsert(pStr, pTab, zPriority, "U", "NEW"); break;
    case 2:  appendQueueInsert(pStr, pTab, zPriority, "D", "OLD");
             appendQueueInsert(pStr, pTab, zPriority, "I", "NEW"); break;
    default: appendQueueInsert(pStr, pTab, zPriority, "D", "OLD"); break;
  }
  sqlite3_str_appendall(pStr, "END");
  return strDone(pStr, pzSql);
}

/* ----------------------------------------------------------------------
** Installing, comparing and repairing.
*/

/* Appends the value of key column iCol of pTab read from the JSON key in
** the SQL expression zPk, as the column holds it: numbers and text as
** they are, a blob back from {"$hex": "..."}. */
static void appendKeyFromJson(sqlite3_str *pStr, const SyncqTable *pTab,
                              int iCol, const char *zPk){
  const SyncqCol *pCol = &pTab->aCol[iCol];
  int bPlain = iCol==pTab->iRowidPk
            || (pTab->bStrict && (sqlite3_stricmp(pCol->zType, "INTEGER")==0
                               || sqlite3_stricmp(pCol->zType, "INT")==0
                               || sqlite3_stricmp(pCol->zType, "TEXT")==0));
  if( bPlain ){
    sqlite3_str_appendf(pStr,
        "(SELECT j.value FROM json_each(%s) AS j WHERE j.key = %Q)",
        zPk, pCol->zName);
  }else{
    sqlite3_str_appendf(pStr,
        "(SELECT CASE WHEN j.type = 'object'"
        " THEN syncq_unhex(json_extract(j.value, '$.\"" SYNCQ_BLOB_TAG "\"'))"
        " ELSE j.value END FROM json_each(%s) AS j WHERE j.key = %Q)",
        zPk, pCol->zName);
  }
}

/* Fills row_data of the queue rows of table zQueued (the name the queue
** holds) after seq iFrom up to seq iUpto that the triggers left to be read
** (a range of the queue's key: a part reads only its own rows): each gets the
** row as the table holds it now, with the queue row's own version.  A row
** that is gone since (deleted later, or by syncqd applying another node's
** delete) makes its change a delete of that key.  Rows of a table that
** does not exist (dropped) or has no key any more are left alone; syncqd
** does not ship them.  Any other error is the caller's: the rows must not
** be passed over (filled_upto would move past them).  *pnFilled counts the
** rows filled. */
static int fillTable(sqlite3 *db, const char *zQueued, sqlite3_int64 iFrom,
                     sqlite3_int64 iUpto, int *pnFilled, char **pzErr){
  sqlite3_str *pStr;
  SyncqTable tab;
  char *zName = 0;
  char *zSql = 0;
  int rc;
  int i;

  rc = syncq_resolve_table(db, zQueued, &zName, pzErr);
  if( rc==SQLITE_NOTFOUND || rc==SQLITE_MISMATCH ){
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_OK;
  }
  if( rc!=SQLITE_OK ) return rc;
  rc = tableLoad(db, zName, &tab, pzErr);
  sqlite3_free(zName);
  if( rc==SQLITE_MISMATCH ){      /* no key any more: cannot read by key */
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_OK;
  }
  if( rc!=SQLITE_OK ) return rc;

  pStr = sqlite3_str_new(0);
  sqlite3_str_appendall(pStr, "UPDATE main.sync_queue SET row_data = (SELECT ");
  appendObject(pStr, &tab, "t", 0, ", ");
  sqlite3_str_appendf(pStr, " FROM main.\"%w\" AS t WHERE ", tab.zName);
  for(i=0; i<tab.nPk; i++){
    if( i ) sqlite3_str_appendall(pStr, " AND ");
    sqlite3_str_appendf(pStr, "t.\"%w\" = ", tab.aCol[tab.aiPk[i]].zName);
    appendKeyFromJson(pStr, &tab, tab.aiPk[i], "sync_queue.pk");
  }
  sqlite3_str_appendf(pStr,
      ") WHERE seq > %lld AND seq <= %lld AND table_name = %Q"
      " AND op IN ('I', 'U') AND row_data IS NULL", iFrom, iUpto, zQueued);
  rc = strDone(pStr, &zSql);
  tableClear(&tab);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    *pnFilled += sqlite3_changes(db);
    rc = execPrintf(db, pzErr,
        "UPDATE main.sync_queue SET op = 'D' WHERE seq > %lld AND seq <= %lld"
        " AND table_name = %Q AND op IN ('I', 'U') AND row_data IS NULL",
        iFrom, iUpto, zQueued);
    if( rc==SQLITE_OK ) *pnFilled -= sqlite3_changes(db);
  }
  return rc;
}

/* The row sums (capture_rowsums.c) of the rows the fill read, queue rows
** after seq iFrom up to iUpto, of tracked tables: a row the fill read is
** the row as syncq saw it last; the key of a delete has none.  Every I or
** U of a key carries the same row after the fill (the row now), so the
** order does not matter but for a delete and a later insert of one key:
** the deletes go first.  The sums are written in key order (the B-tree's
** order: far fewer pages touched than in the queue's order). */
static int sumsOfFill(sqlite3 *db, sqlite3_int64 iFrom, sqlite3_int64 iUpto,
                      char **pzErr){
  return execPrintf(db, pzErr,
      "DELETE FROM main.syncq_rowsums WHERE (table_name, pk) IN"
      " (SELECT table_name, pk FROM main.sync_queue"
      "   WHERE seq > %lld AND seq <= %lld AND op = 'D');"
      "INSERT OR REPLACE INTO main.syncq_rowsums(table_name, pk, sum)"
      " SELECT q.table_name, q.pk, syncq_rowsum(q.row_data)"
      "   FROM main.sync_queue AS q"
      "  WHERE q.seq > %lld AND q.seq <= %lld AND q.op IN ('I', 'U')"
      "    AND q.row_data IS NOT NULL"
      "    AND q.table_name IN (SELECT table_name FROM main.syncq_tracked)"
      "  ORDER BY q.table_name, q.pk, q.seq",
      iFrom, iUpto, iFrom, iUpto);
}

/* syncq_fill(): read into the queue the rows its changes stand for (see
** fillTable()), for the queue rows up to the newest, or, if nMax > 0, up
** to the nMax-th row still to be read after syncq_state.filled_upto;
** *piUpto is the seq it covered, also kept in syncq_state.filled_upto.
** syncqd runs it in transactions of its own before it reads the queue (a
** part at a time, so that the app never waits long for the write lock),
** and reads no further than *piUpto: a change is shipped with the row as
** it was at the fill. */
int syncq_fill(sqlite3 *db, int nMax, sqlite3_int64 *piUpto, int *pnFilled,
               char **pzErr){
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 iFrom = 0;
  char **azTable = 0;
  int nTable = 0;
  int rc;
  int i;

  *piUpto = 0;
  *pnFilled = 0;
  rc = savepointBegin(db, "syncq_fill", pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = syncq_ensure_schema(db, pzErr);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db,
        "SELECT coalesce((SELECT seq FROM main.sync_queue"
        "                 WHERE ?1 > 0 AND seq > s.filled_upto"
        "                   AND row_data IS NULL AND op IN ('I', 'U')"
        "                 ORDER BY seq LIMIT 1 OFFSET ?1 - 1),"
        "                (SELECT max(seq) FROM main.sync_queue), 0),"
        "       s.filled_upto"
        "  FROM main.syncq_state AS s",
        -1, &pStmt, 0);
    if( rc==SQLITE_OK ) sqlite3_bind_int(pStmt, 1, nMax);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      *piUpto = sqlite3_column_int64(pStmt, 0);
      iFrom = sqlite3_column_int64(pStmt, 1);
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK || rc!=SQLITE_OK ){
      rc = setDbError(db, pzErr, sqlite3_errcode(db));
    }
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db,
        "SELECT DISTINCT table_name FROM main.sync_queue"
        " WHERE seq > ?1 AND seq <= ?2 AND row_data IS NULL AND op IN ('I', 'U')",
        -1, &pStmt, 0);
    if( rc==SQLITE_OK ) sqlite3_bind_int64(pStmt, 1, iFrom);
    if( rc==SQLITE_OK ) sqlite3_bind_int64(pStmt, 2, *piUpto);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      char **aNew = sqlite3_realloc64(azTable, sizeof(char*)*(nTable+1));
      if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
      azTable = aNew;
      azTable[nTable] = sqlite3_mprintf("%s",
                                   (const char*)sqlite3_column_text(pStmt, 0));
      if( azTable[nTable++]==0 ) rc = SQLITE_NOMEM;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
      rc = setDbError(db, pzErr, sqlite3_errcode(db));
    }
  }
  for(i=0; rc==SQLITE_OK && i<nTable; i++){
    rc = fillTable(db, azTable[i], iFrom, *piUpto, pnFilled, pzErr);
  }
  if( rc==SQLITE_OK ) rc = sumsOfFill(db, iFrom, *piUpto, pzErr);
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "UPDATE main.syncq_state SET filled_upto = %lld"
        " WHERE filled_upto < %lld", *piUpto, *piUpto);
  }
  for(i=0; i<nTable; i++) sqlite3_free(azTable[i]);
  sqlite3_free(azTable);
  return savepointEnd(db, "syncq_fill", rc, pzErr);
}

/* ----------------------------------------------------------------------
** Following the columns of a tracked table.
**
** syncq_tracked.columns holds the columns the last repair saw.  When they
** differ now, the columns that went are kept in syncq_columns_gone, so
** that syncqd can tell a column this file no longer has (drop it from an
** incoming change, apply the rest) from one it does not have yet (set the
** change aside until it exists).  A column that went and another that came
** between the same two surviving neighbours, with the same declared type,
** is taken for a rename: that is what ALTER TABLE RENAME COLUMN and a
** migration tool's rebuild leave (a type change keeps the name).  syncqd
** repairs as soon as the schema moves, so it mostly sees one change at a
** time.
*/

/* Records that column zOld of zTable went (renamed to zNew, or dropped if
** zNew is NULL); a chain of renames points at the last name. */
static int columnGone(sqlite3 *db, const char *zTable, const char *zOld,
                      const char *zNew, char **pzErr){
  int rc = execPrintf(db, pzErr,
      "INSERT OR REPLACE INTO main.syncq_columns_gone"
      "(table_name, column_name, renamed_to, gone_at) VALUES(%Q, %Q, %Q, %s)",
      zTable, zOld, zNew, SYNCQ_NOW_EXPR);
  if( rc==SQLITE_OK && zNew ){
    rc = execPrintf(db, pzErr,
        "UPDATE main.syncq_columns_gone SET renamed_to = %Q"
        " WHERE table_name = %Q AND renamed_to = %Q COLLATE NOCASE",
        zNew, zTable, zOld);
  }
  return rc;
}

/* The old index of the nearest column before (iDir -1) or after (+1)
** column iCol of pTab that the old columns azOld (name, type pairs) had
** too; -1 or nOld if there is none. */
static int oldIndex(char **azOld, int nOld, const SyncqTable *pTab, int iCol,
                    int iDir){
  int j, i;
  for(j=iCol+iDir; j>=0 && j<pTab->nCol; j+=iDir){
    for(i=0; i<nOld; i++){
      if( sqlite3_stricmp(azOld[2*i], pTab->aCol[j].zName)==0 ) return i;
    }
  }
  return iDir<0 ? -1 : nOld;
}

/* Compares pTab's columns with those syncq_tracked remembers, records the
** columns that went, and remembers the columns of now. */
static int columnsFollow(sqlite3 *db, const SyncqTable *pTab, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *pStr;
  char **azOld = 0;
  int nOld = 0;
  int *aiGone = 0, *aiCame = 0, *aiPair = 0;
  int nGone = 0, nCame = 0;
  char *zNow = 0;
  int rc;
  int i, j;

  rc = sqlite3_prepare_v2(db,
      "SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]')"
      " FROM main.syncq_tracked AS t, json_each(t.columns) AS j"
      " WHERE t.table_name = ?1 ORDER BY j.key", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  sqlite3_bind_text(pStmt, 1, pTab->zName, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    char **aNew = sqlite3_realloc64(azOld, sizeof(char*)*2*(nOld+1));
    if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
    azOld = aNew;
    azOld[2*nOld] = sqlite3_mprintf("%s",
                                  (const char*)sqlite3_column_text(pStmt, 0));
    azOld[2*nOld+1] = sqlite3_mprintf("%s",
                                  (const char*)sqlite3_column_text(pStmt, 1));
    if( azOld[2*nOld]==0 || azOld[2*nOld+1]==0 ) rc = SQLITE_NOMEM;
    nOld++;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = setDbError(db, pzErr, sqlite3_errcode(db));
  }

  if( rc==SQLITE_OK && nOld>0 ){
    aiGone = sqlite3_malloc64(sizeof(int)*(nOld+1));
    aiCame = sqlite3_malloc64(sizeof(int)*(pTab->nCol+1));
    if( aiGone==0 || aiCame==0 ) rc = SQLITE_NOMEM;
    for(i=0; rc==SQLITE_OK && i<nOld; i++){
      for(j=0; j<pTab->nCol
               && sqlite3_stricmp(azOld[2*i], pTab->aCol[j].zName)!=0; j++){}
      if( j==pTab->nCol ) aiGone[nGone++] = i;
    }
    for(j=0; rc==SQLITE_OK && j<pTab->nCol; j++){
      for(i=0; i<nOld && sqlite3_stricmp(azOld[2*i], pTab->aCol[j].zName)!=0;
          i++){}
      if( i==nOld ) aiCame[nCame++] = j;
    }
    /* Pair each column that came with the first column that went between
    ** the same two surviving neighbours, with the same declared type. */
    aiPair = sqlite3_malloc64(sizeof(int)*(nOld+1));
    if( aiPair==0 ) rc = SQLITE_NOMEM;
    for(i=0; rc==SQLITE_OK && i<nOld; i++) aiPair[i] = -1;
    for(j=0; rc==SQLITE_OK && j<nCame; j++){
      int iLo = oldIndex(azOld, nOld, pTab, aiCame[j], -1);
      int iHi = oldIndex(azOld, nOld, pTab, aiCame[j], +1);
      for(i=0; i<nGone; i++){
        int g = aiGone[i];
        if( g>iLo && g<iHi && aiPair[g]<0
         && sqlite3_stricmp(azOld[2*g+1], pTab->aCol[aiCame[j]].zType)==0 ){
          aiPair[g] = aiCame[j];
          break;
        }
      }
    }
    for(i=0; rc==SQLITE_OK && i<nGone; i++){
      int g = aiGone[i];
      rc = columnGone(db, pTab->zName, azOld[2*g],
                      aiPair[g]>=0 ? pTab->aCol[aiPair[g]].zName : 0, pzErr);
    }
  }
  if( rc==SQLITE_OK ){
    /* A column that is here (again) has not gone. */
    int nPart = partCount(pTab->nCol, 1), p;
    pStr = sqlite3_str_new(0);
    for(p=0; p<nPart; p++){
      appendPartStart(pStr, "json_array", p, nPart);
      for(j=p*JSON_PART_ARGS; j<pTab->nCol && j<(p+1)*JSON_PART_ARGS; j++){
        sqlite3_str_appendf(pStr, "%sjson_array(%Q, %Q)",
                            j>p*JSON_PART_ARGS ? ", " : "",
                            pTab->aCol[j].zName, pTab->aCol[j].zType);
      }
      appendPartEnd(pStr, p, nPart);
    }
    rc = strDone(pStr, &zNow);
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "DELETE FROM main.syncq_columns_gone WHERE table_name = %Q"
        " AND column_name COLLATE NOCASE IN"
        " (SELECT json_extract(value, '$[0]') FROM json_each(%s))",
        pTab->zName, zNow);
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "UPDATE main.syncq_tracked SET columns = %s"
        " WHERE table_name = %Q AND columns IS NOT %s",
        zNow, pTab->zName, zNow);
  }
  for(i=0; i<2*nOld; i++) sqlite3_free(azOld[i]);
  sqlite3_free(azOld);
  sqlite3_free(aiGone);
  sqlite3_free(aiCame);
  sqlite3_free(aiPair);
  sqlite3_free(zNow);
  return rc;
}

/* Installs trigger iKind of pTab unless sqlite_schema already holds the
** same SQL.  Sets *pbChanged when it (re)created the trigger. */
static int triggerInstall(sqlite3 *db, const SyncqTable *pTab,
                          const char *zPriority, int iKind, int *pbChanged,
                          char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char *zSql = 0;
  char *zName = 0;
  int bSame = 0;
  int rc;

  rc = triggerSql(pTab, zPriority, iKind, &zSql);
  if( rc!=SQLITE_OK ) return rc;
  zName = sqlite3_mprintf("syncq_%s:%s", azTriggerKind[iKind], pTab->zName);
  if( zName==0 ){
    sqlite3_free(zSql);
    return SQLITE_NOMEM;
  }
  rc = sqlite3_prepare_v2(db,
      "SELECT sql IS ?2 FROM main.sqlite_schema"
      " WHERE type = 'trigger' AND name = ?1", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    if( rc==SQLITE_OK ) rc = sqlite3_bind_text(pStmt, 2, zSql, -1, SQLITE_STATIC);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      bSame = sqlite3_column_int(pStmt, 0);
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    rc = setDbError(db, pzErr, rc);
  }else if( !bSame ){
    rc = execPrintf(db, pzErr, "DROP TRIGGER IF EXISTS main.\"%w\"", zName);
    /* zSql starts "CREATE TRIGGER "; create it in main explicitly. */
    if( rc==SQLITE_OK ){
      rc = execPrintf(db, pzErr, "CREATE TRIGGER main.%s", zSql + 15);
    }
    if( rc==SQLITE_OK ) *pbChanged = 1;
  }
  sqlite3_free(zName);
  sqlite3_free(zSql);
  return rc;
}

/* Sets *pbMissing if table zName has no insert trigger of ours: a table
** new to tracking, or one rebuilt since (the triggers went with the old
** table). */
static int triggerMissing(sqlite3 *db, const char *zName, int *pbMissing,
                          char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db,
      "SELECT count(*) FROM main.sqlite_schema"
      " WHERE type = 'trigger' AND name = 'syncq_ins:' || ?1", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *pbMissing = sqlite3_column_int(pStmt, 0)==0;
  }
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  return SQLITE_OK;
}

/* Appends the row sum (capture_rowsums.c) of row zRef of pTab: from its
** values (syncq_rowsum_of) when one call takes them all, else from the
** JSON sync_fill() makes of it. */
static void appendRowsum(sqlite3_str *pStr, const SyncqTable *pTab,
                         const char *zRef){
  int i;
  if( 2*pTab->nCol>JSON_PART_ARGS ){
    sqlite3_str_appendall(pStr, "syncq_rowsum(");
    appendObject(pStr, pTab, zRef, 0, ", ");
    sqlite3_str_appendall(pStr, ")");
    return;
  }
  sqlite3_str_appendall(pStr, "syncq_rowsum_of(");
  for(i=0; i<pTab->nCol; i++){
    sqlite3_str_appendf(pStr, "%s%Q, %s.\"%w\"", i ? ", " : "",
                        pTab->aCol[i].zName, zRef, pTab->aCol[i].zName);
  }
  sqlite3_str_appendall(pStr, ")");
}

/* Appends "SELECT <key JSON> AS pk, <row sum> AS sum FROM
** main.<table> AS t": every row of pTab with its sum, the key and the row
** spelled as the triggers and sync_fill() spell them. */
static void appendSums(sqlite3_str *pStr, const SyncqTable *pTab){
  sqlite3_str_appendall(pStr, "SELECT ");
  appendObject(pStr, pTab, "t", 1, ", ");
  sqlite3_str_appendall(pStr, " AS pk, ");
  appendRowsum(pStr, pTab, "t");
  sqlite3_str_appendf(pStr, " AS sum FROM main.\"%w\" AS t", pTab->zName);
}

/* Queues the writes to pTab that its missing triggers did not see, by its
** row sums: a row whose sum differs (in a column both have), or that has
** none, is queued as U (I if it has none); a key with a sum and no row as
** D; each with a new version, this node's origin and no txid, as a write
** of a plain connection.  A key whose newest queue row the fill has not
** read yet is left to it when that row is I or U (the fill reads the row
** as it is now, or makes it a delete); when it is a D and the row is there
** again, the row is queued as I.  Rows whose values match are left alone:
** the copy the rebuild made is not a change. */
static int judgeTable(sqlite3 *db, const SyncqTable *pTab,
                      const char *zPriority, char **pzErr){
  sqlite3_str *pStr = sqlite3_str_new(0);
  char *zSql = 0;
  int i, rc;

  sqlite3_str_appendf(pStr,
      "CREATE TEMP TABLE syncq_pending AS"
      " SELECT pk, op, max(seq) AS seq FROM main.sync_queue"
      "  WHERE seq > (SELECT filled_upto FROM main.syncq_state)"
      "    AND table_name = %Q GROUP BY pk;"
      "CREATE INDEX temp.syncq_pending_pk ON syncq_pending(pk);", pTab->zName);
  /* gone: a sum and no row */
  sqlite3_str_appendf(pStr,
      "INSERT INTO main.sync_queue(txid, table_name, op, pk, row_data,"
      " changed_at, origin, priority)"
      " SELECT NULL, %Q, 'D', s.pk, NULL, %s, %Q, %Q"
      "   FROM main.syncq_rowsums AS s"
      "  WHERE s.table_name = %Q"
      "    AND NOT EXISTS (SELECT 1 FROM temp.syncq_pending AS p WHERE p.pk = s.pk)"
      "    AND NOT EXISTS (SELECT 1 FROM main.\"%w\" AS t WHERE ",
      pTab->zName, SYNCQ_VERSION_EXPR, pTab->zNode, zPriority, pTab->zName,
      pTab->zName);
  for(i=0; i<pTab->nPk; i++){
    if( i ) sqlite3_str_appendall(pStr, " AND ");
    sqlite3_str_appendf(pStr, "t.\"%w\" = ", pTab->aCol[pTab->aiPk[i]].zName);
    appendKeyFromJson(pStr, pTab, pTab->aiPk[i], "s.pk");
  }
  sqlite3_str_appendall(pStr, ") ORDER BY s.pk;");
  /* written: a row whose sum differs, or that has none */
  sqlite3_str_appendf(pStr,
      "INSERT INTO main.sync_queue(txid, table_name, op, pk, row_data,"
      " changed_at, origin, priority)"
      " SELECT NULL, %Q, CASE WHEN p.op IS NULL AND s.sum IS NOT NULL"
      " THEN 'U' ELSE 'I' END, c.pk, NULL, %s, %Q, %Q FROM (",
      pTab->zName, SYNCQ_VERSION_EXPR, pTab->zNode, zPriority);
  appendSums(pStr, pTab);
  sqlite3_str_appendf(pStr,
      ") AS c LEFT JOIN main.syncq_rowsums AS s"
      "    ON s.table_name = %Q AND s.pk = c.pk"
      "  LEFT JOIN temp.syncq_pending AS p ON p.pk = c.pk"
      " WHERE p.op = 'D'"
      "    OR (p.op IS NULL AND (s.sum IS NULL"
      "        OR NOT syncq_rowsum_same(s.sum, c.sum)));"
      "DROP TABLE temp.syncq_pending;", pTab->zName);
  rc = strDone(pStr, &zSql);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    sqlite3_exec(db, "DROP TABLE IF EXISTS temp.syncq_pending", 0, 0, 0);
  }
  return rc;
}

/* Sets *pbCopy unless pTab holds none of the rows its sums know while they
** know some: then the table was dropped and made again (empty, or with rows
** of its own), not rebuilt from a copy, and its rows are not judged (a
** DROP TABLE is no delete of its rows; before row sums, nothing of such a
** table was queued either).  A table whose sums know no row (it was empty)
** is judged: every row it holds now was written since. */
static int isCopy(sqlite3 *db, const SyncqTable *pTab, int *pbCopy,
                  char **pzErr){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *pStr = sqlite3_str_new(0);
  char *zSql = 0;
  int rc;

  *pbCopy = 1;
  sqlite3_str_appendf(pStr,
      "SELECT EXISTS (SELECT 1 FROM main.syncq_rowsums WHERE table_name = %Q)"
      " AND NOT EXISTS (SELECT 1 FROM (", pTab->zName);
  appendSums(pStr, pTab);
  sqlite3_str_appendf(pStr,
      ") AS c JOIN main.syncq_rowsums AS s"
      " ON s.table_name = %Q AND s.pk = c.pk)", pTab->zName);
  rc = strDone(pStr, &zSql);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( sqlite3_step(pStmt)==SQLITE_ROW ) *pbCopy = !sqlite3_column_int(pStmt, 0);
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  return SQLITE_OK;
}

/* Keeps the row sums of pTab (capture_rowsums.c) true after its triggers
** were (re)installed.  If they were missing (bMissing: a rebuild) and the
** sums cover the table, the rows written meanwhile are queued first
** (judgeTable), unless it is no copy (isCopy).  A table whose sums do not
** cover it yet (tracked just now,
** or a file of an older syncq) has them filled from its rows as they are,
** without judging: there is nothing to judge against. */
static int sumsFollow(sqlite3 *db, const SyncqTable *pTab,
                      const char *zPriority, int bMissing, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *pStr;
  char *zSql = 0;
  int bSummed = 0;
  int rc;

  /* a file not migrated yet (a repair before the first fill) has none */
  rc = sqlite3_prepare_v2(db,
      "SELECT summed FROM main.syncq_tracked WHERE table_name = ?1",
      -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return SQLITE_OK;
  sqlite3_bind_text(pStmt, 1, pTab->zName, -1, SQLITE_STATIC);
  if( sqlite3_step(pStmt)==SQLITE_ROW ) bSummed = sqlite3_column_int(pStmt, 0);
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( bSummed && !bMissing ) return SQLITE_OK;
  if( bSummed ){
    int bCopy = 0;
    rc = isCopy(db, pTab, &bCopy, pzErr);
    if( rc==SQLITE_OK && bCopy ) rc = judgeTable(db, pTab, zPriority, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  pStr = sqlite3_str_new(0);
  sqlite3_str_appendf(pStr,
      "DELETE FROM main.syncq_rowsums WHERE table_name = %Q;"
      "INSERT INTO main.syncq_rowsums(table_name, pk, sum)"
      " SELECT %Q, c.pk, c.sum FROM (", pTab->zName, pTab->zName);
  appendSums(pStr, pTab);
  sqlite3_str_appendf(pStr,
      ") AS c ORDER BY c.pk;"
      "UPDATE main.syncq_tracked SET summed = 1 WHERE table_name = %Q",
      pTab->zName);
  rc = strDone(pStr, &zSql);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}

/* Brings the triggers of table zName (from sqlite_schema) up to date with
** its key and zPriority, records it in syncq_tracked with its columns (and
** those that went since), with key policy zKeys if not NULL (else the one
** it had, 'auto' for a table new to it), and with zForms if bSetForms, else
** keeping the forms it had.  *pbChanged is set if any trigger was (re)created.  No
** queue row is written: changes queued before keep their versions, and
** syncq_fill() reads their rows as they are now. */
static int installAll(sqlite3 *db, const char *zName, const char *zPriority,
                      const char *zKeys, int bSetForms, const char *zForms,
                      int *pbChanged, char **pzErr){
  SyncqTable tab;
  int bMissing = 0;
  int rc;
  int i;

  rc = tableLoad(db, zName, &tab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = triggerMissing(db, zName, &bMissing, pzErr);
  if( rc==SQLITE_OK && zKeys && strcmp(zKeys, "hub")==0 && tab.iRowidPk<0 ){
    rc = setError(pzErr, SQLITE_MISUSE,
        "cannot track table \"%s\" with keys 'hub': its key is not one"
        " INTEGER PRIMARY KEY column (the rowid, which SQLite assigns);"
        " use keys 'natural' or 'auto'", zName);
  }
  for(i=0; rc==SQLITE_OK && i<SYNCQ_N_TRIGGER; i++){
    rc = triggerInstall(db, &tab, zPriority, i, pbChanged, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "INSERT INTO main.syncq_tracked(table_name, priority, tracked_at, forms,"
        " keys) VALUES(%Q, %Q, %s, %Q, coalesce(%Q, 'auto'))"
        " ON CONFLICT(table_name) DO UPDATE SET table_name = excluded.table_name,"
        " priority = excluded.priority%s%s"
        " WHERE table_name IS NOT excluded.table_name"
        " OR priority IS NOT excluded.priority%s%s",
        zName, zPriority, SYNCQ_NOW_EXPR, zForms, zKeys,
        bSetForms ? ", forms = excluded.forms" : "",
        zKeys ? ", keys = excluded.keys" : "",
        bSetForms ? " OR forms IS NOT excluded.forms" : "",
        zKeys ? " OR keys IS NOT excluded.keys" : "");
  }
  if( rc==SQLITE_OK ) rc = columnsFollow(db, &tab, pzErr);
  if( rc==SQLITE_OK ) rc = sumsFollow(db, &tab, zPriority, bMissing, pzErr);
  tableClear(&tab);
  return rc;
}

/* Does main hold a table called zName? */
static int hasTable(sqlite3 *db, const char *zName){
  sqlite3_stmt *pStmt = 0;
  int bHas = 0;
  if( sqlite3_prepare_v2(db, "SELECT 1 FROM main.sqlite_schema"
        " WHERE type = 'table' AND name = ?1", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    bHas = sqlite3_step(pStmt)==SQLITE_ROW;
  }
  sqlite3_finalize(pStmt);
  return bHas;
}

/* Drops the four triggers named after table zName. */
static int dropAll(sqlite3 *db, const char *zName, char **pzErr){
  int rc = SQLITE_OK;
  int i;
  for(i=0; rc==SQLITE_OK && i<SYNCQ_N_TRIGGER; i++){
    rc = execPrintf(db, pzErr, "DROP TRIGGER IF EXISTS main.\"syncq_%s:%w\"",
                    azTriggerKind[i], zName);
  }
  return rc;
}

/* ----------------------------------------------------------------------
** Value forms: how syncqd writes the hub's values into a table
** (docs/replication.md, Types).  syncq_tracked.forms holds NULL (every
** column in the default form), the name of a form for the whole table, or
** a JSON object of column names (or "*", the rest) to form names.
*/

/* The forms syncqd knows.  Keep in step with replicator/model/value.c. */
static const char *const azForm[] = { "default", "sqlalchemy" };

/* Is z the name of a form? */
static int isForm(const char *z){
  size_t i;
  for(i=0; i<sizeof(azForm)/sizeof(azForm[0]); i++){
    if( strcmp(z, azForm[i])==0 ) return 1;
  }
  return 0;
}

/* Is zCol "*" or a stored column of pTab? */
static int isFormColumn(const SyncqTable *pTab, const char *zCol){
  int i;
  if( strcmp(zCol, "*")==0 ) return 1;
  for(i=0; i<pTab->nCol; i++){
    if( strcmp(pTab->aCol[i].zName, zCol)==0 ) return 1;
  }
  return 0;
}

/* Checks zForms, the forms argument of sync_track(), against table pTab
** and sets *pzNorm (sqlite3_malloc'd, NULL for the default) to what
** syncq_tracked.forms is to hold. */
static int formsNormalize(sqlite3 *db, const SyncqTable *pTab,
                          const char *zForms, char **pzNorm, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc;
  int bObject = 0;

  *pzNorm = 0;
  if( isForm(zForms) ){
    if( strcmp(zForms, "default")==0 ) return SQLITE_OK;
    *pzNorm = sqlite3_mprintf("%s", zForms);
    return *pzNorm ? SQLITE_OK : SQLITE_NOMEM;
  }
  rc = sqlite3_prepare_v2(db, "SELECT json_type(?1) = 'object', json(?1)",
                          -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  sqlite3_bind_text(pStmt, 1, zForms, -1, SQLITE_STATIC);
  if( sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_int(pStmt, 0) ){
    bObject = 1;
    *pzNorm = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 1));
    if( *pzNorm==0 ) rc = SQLITE_NOMEM;
  }
  sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return rc;
  if( !bObject ){
    return setError(pzErr, SQLITE_MISUSE,
        "bad forms \"%s\": expected 'default', 'sqlalchemy' or a JSON object"
        " of column names to those", zForms);
  }

  rc = sqlite3_prepare_v2(db,
      "SELECT key, value, type FROM json_each(?1)", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzNorm);
    *pzNorm = 0;
    return setDbError(db, pzErr, rc);
  }
  sqlite3_bind_text(pStmt, 1, *pzNorm, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zCol = (const char*)sqlite3_column_text(pStmt, 0);
    const char *zForm = (const char*)sqlite3_column_text(pStmt, 1);
    const char *zType = (const char*)sqlite3_column_text(pStmt, 2);
    if( zCol==0 || zType==0 ){
      rc = SQLITE_NOMEM;
    }else if( !isFormColumn(pTab, zCol) ){
      rc = setError(pzErr, SQLITE_MISUSE,
          "forms names column \"%s\", which is not a stored column of"
          " table \"%s\"", zCol, pTab->zName);
    }else if( strcmp(zType, "text")!=0 || zForm==0 || !isForm(zForm) ){
      rc = setError(pzErr, SQLITE_MISUSE,
          "bad form %s%s%s for column \"%s\": expected 'default' or"
          " 'sqlalchemy'", strcmp(zType, "text")==0 ? "\"" : "",
          zForm ? zForm : "null", strcmp(zType, "text")==0 ? "\"" : "",
          zCol);
    }
  }
  sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzNorm);
    *pzNorm = 0;
  }
  return rc;
}

/* Checks the forms argument of sync_track() for table zName; see
** formsNormalize(). */
static int formsForTable(sqlite3 *db, const char *zName, const char *zForms,
                         char **pzNorm, char **pzErr){
  SyncqTable tab;
  int rc = tableLoad(db, zName, &tab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = formsNormalize(db, &tab, zForms, pzNorm, pzErr);
  tableClear(&tab);
  return rc;
}

/* sync_track(): capture table zTable with priority zPriority; zKeys, if
** not NULL, sets its key policy, zForms, if not NULL, its value forms. */
int syncq_track(sqlite3 *db, const char *zTable, const char *zPriority,
                const char *zKeys, const char *zForms, char **pzErr){
  char *zName = 0;
  char *zNorm = 0;
  int bChanged = 0;
  int rc;

  if( strcmp(zPriority, SYNCQ_PRIORITY_IMMEDIATE)!=0
   && strcmp(zPriority, SYNCQ_PRIORITY_BATCHED)!=0 ){
    return setError(pzErr, SQLITE_MISUSE,
        "bad priority \"%s\": expected 'immediate' or 'batched'", zPriority);
  }
  if( zKeys && strcmp(zKeys, "auto")!=0 && strcmp(zKeys, "hub")!=0
   && strcmp(zKeys, "natural")!=0 ){
    return setError(pzErr, SQLITE_MISUSE,
        "bad keys \"%s\": expected 'auto', 'hub', 'natural' or NULL", zKeys);
  }
  rc = savepointBegin(db, "syncq_track", pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = syncq_ensure_schema(db, pzErr);
  if( rc==SQLITE_OK ) rc = syncq_resolve_table(db, zTable, &zName, pzErr);
  if( rc==SQLITE_OK && zForms ){
    rc = formsForTable(db, zName, zForms, &zNorm, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = installAll(db, zName, zPriority, zKeys, zForms!=0, zNorm, &bChanged,
                    pzErr);
  }
  sqlite3_free(zName);
  sqlite3_free(zNorm);
  return savepointEnd(db, "syncq_track", rc, pzErr);
}

/* sync_untrack(): stop capturing zTable.  Queued rows stay. */
int syncq_untrack(sqlite3 *db, const char *zTable, int *pbWasTracked,
                  char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char *zName = 0;
  int rc;

  *pbWasTracked = 0;
  rc = sqlite3_prepare_v2(db,
      "SELECT table_name FROM main.syncq_tracked WHERE table_name = ?1",
      -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_bind_text(pStmt, 1, zTable, -1, SQLITE_STATIC);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      zName = sqlite3_mprintf("%s", (const char*)sqlite3_column_text(pStmt, 0));
      if( zName==0 ) rc = SQLITE_NOMEM;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
      rc = setDbError(db, pzErr, sqlite3_errcode(db));
    }
  }else{
    rc = SQLITE_OK;            /* no syncq_tracked table: nothing tracked */
  }
  if( rc!=SQLITE_OK ) return rc;

  if( zName==0 ){
    /* Not tracked.  Still drop triggers an edited syncq_tracked lost. */
    rc = syncq_resolve_table(db, zTable, &zName, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }else{
    *pbWasTracked = 1;
  }
  rc = savepointBegin(db, "syncq_untrack", pzErr);
  if( rc==SQLITE_OK ){
    rc = dropAll(db, zName, pzErr);
    if( rc==SQLITE_OK && *pbWasTracked ){
      rc = execPrintf(db, pzErr,
          "DELETE FROM main.syncq_tracked WHERE table_name = %Q", zName);
    }
    if( rc==SQLITE_OK && *pbWasTracked && hasTable(db, "syncq_rowsums") ){
      rc = execPrintf(db, pzErr,
          "DELETE FROM main.syncq_rowsums WHERE table_name = %Q", zName);
    }
    rc = savepointEnd(db, "syncq_untrack", rc, pzErr);
  }
  sqlite3_free(zName);
  return rc;
}

/* The versions syncqd keeps of the rows of table zOld (sync_versions, in
** files it synced) follow the table to its name zNew; leftovers of a
** former table called zNew go. */
static int renameVersions(sqlite3 *db, const char *zOld, const char *zNew,
                          char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int bHas = 0;
  int rc = sqlite3_prepare_v2(db,
      "SELECT 1 FROM main.sqlite_schema"
      " WHERE type = 'table' AND name = 'sync_versions'", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  bHas = sqlite3_step(pStmt)==SQLITE_ROW;
  rc = sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  if( !bHas ) return SQLITE_OK;
  return execPrintf(db, pzErr,
      "DELETE FROM main.sync_versions WHERE table_name = %Q;"
      "UPDATE main.sync_versions SET table_name = %Q WHERE table_name = %Q",
      zNew, zNew, zOld);
}

/* Repairs one tracked table: regenerates stale or missing triggers, and
** follows a table renamed since (its triggers moved with it). */
static int repairOne(sqlite3 *db, const char *zTracked, const char *zPriority,
                     int *pnRepaired, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char *zName = 0;
  char *zNew = 0;
  int bChanged = 0;
  int rc;

  rc = syncq_resolve_table(db, zTracked, &zName, pzErr);
  if( rc==SQLITE_OK ){
    rc = installAll(db, zName, zPriority, 0, 0, 0, &bChanged, pzErr);
    sqlite3_free(zName);
    if( rc==SQLITE_OK && bChanged ) (*pnRepaired)++;
    return rc;
  }
  if( rc!=SQLITE_NOTFOUND && rc!=SQLITE_MISMATCH ) return rc;
  sqlite3_free(*pzErr);
  *pzErr = 0;

  /* Gone.  ALTER TABLE RENAME keeps the triggers, on the new name. */
  rc = sqlite3_prepare_v2(db,
      "SELECT tbl_name FROM main.sqlite_schema"
      " WHERE type = 'trigger' AND name = 'syncq_ins:' || ?1", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return setDbError(db, pzErr, rc);
  rc = sqlite3_bind_text(pStmt, 1, zTracked, -1, SQLITE_STATIC);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    zNew = sqlite3_mprintf("%s", (const char*)sqlite3_column_text(pStmt, 0));
    if( zNew==0 ) rc = SQLITE_NOMEM;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = setDbError(db, pzErr, sqlite3_errcode(db));
  }
  if( rc!=SQLITE_OK || zNew==0 ) return rc;   /* dropped: nothing to do */

  /* The tracking, the columns that went, and the changes syncqd has not
  ** read yet (queued under the old name by the moved triggers) follow.
  ** The old name is remembered (syncq_tables_renamed), for the hub's
  ** changes that still carry it. */
  rc = dropAll(db, zTracked, pzErr);
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr,
        "UPDATE main.syncq_tracked SET table_name = %Q WHERE table_name = %Q;"
        "UPDATE main.syncq_columns_gone SET table_name = %Q"
        " WHERE table_name = %Q;"
        "UPDATE main.sync_queue SET table_name = %Q WHERE table_name = %Q"
        " AND (seq > (SELECT filled_upto FROM main.syncq_state)"
        "      OR (row_data IS NULL AND op IN ('I', 'U')));"
        /* a fill that passed them (no such table then) reads them again */
        "UPDATE main.syncq_state SET filled_upto = (SELECT min(seq) - 1"
        " FROM main.sync_queue WHERE table_name = %Q AND row_data IS NULL"
        " AND op IN ('I', 'U')) WHERE filled_upto >= (SELECT min(seq)"
        " FROM main.sync_queue WHERE table_name = %Q AND row_data IS NULL"
        " AND op IN ('I', 'U'));"
        "UPDATE main.syncq_tables_renamed SET renamed_to = %Q"
        " WHERE renamed_to = %Q;"
        "INSERT OR REPLACE INTO main.syncq_tables_renamed"
        " (table_name, renamed_to, renamed_at)"
        " VALUES(%Q, %Q, %s);"
        "DELETE FROM main.syncq_tables_renamed WHERE table_name = %Q",
        zNew, zTracked, zNew, zTracked, zNew, zTracked, zNew, zNew,
        zNew, zTracked, zTracked, zNew, SYNCQ_NOW_EXPR, zNew);
  }
  if( rc==SQLITE_OK ) rc = renameVersions(db, zTracked, zNew, pzErr);
  if( rc==SQLITE_OK && hasTable(db, "syncq_rowsums") ){
    rc = execPrintf(db, pzErr,
        "DELETE FROM main.syncq_rowsums WHERE table_name = %Q;"
        "UPDATE main.syncq_rowsums SET table_name = %Q WHERE table_name = %Q",
        zNew, zNew, zTracked);
  }
  if( rc==SQLITE_OK ) rc = installAll(db, zNew, zPriority, 0, 0, 0, &bChanged, pzErr);
  if( rc==SQLITE_OK ) (*pnRepaired)++;
  sqlite3_free(zNew);
  return rc;
}

/* sync_repair(): bring every tracked table's triggers up to date. */
int syncq_repair(sqlite3 *db, int *pnRepaired, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char **azList = 0;           /* name, priority, name, priority, ... */
  int nList = 0;
  int nAlloc = 0;
  int rc;
  int i;

  *pnRepaired = 0;
  rc = sqlite3_prepare_v2(db,
      "SELECT table_name, priority FROM main.syncq_tracked ORDER BY 1",
      -1, &pStmt, 0);
  if( rc!=SQLITE_OK ){
    /* No syncq_tracked table: nothing is tracked. */
    return SQLITE_OK;
  }
  while( sqlite3_step(pStmt)==SQLITE_ROW ){
    if( nList+2>nAlloc ){
      int nNew = nAlloc ? nAlloc*2 : 16;
      char **aNew = sqlite3_realloc64(azList, sizeof(char*)*nNew);
      if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
      azList = aNew;
      nAlloc = nNew;
    }
    for(i=0; i<2; i++){
      azList[nList] = sqlite3_mprintf("%s",
                                  (const char*)sqlite3_column_text(pStmt, i));
      if( azList[nList]==0 ) rc = SQLITE_NOMEM;
      nList++;
    }
    if( rc!=SQLITE_OK ) break;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = setDbError(db, pzErr, sqlite3_errcode(db));
  }
  if( rc==SQLITE_OK && nList>0 ){
    rc = savepointBegin(db, "syncq_repair", pzErr);
    if( rc==SQLITE_OK ){
      for(i=0; rc==SQLITE_OK && i<nList; i+=2){
        rc = repairOne(db, azList[i], azList[i+1], pnRepaired, pzErr);
      }
      rc = savepointEnd(db, "syncq_repair", rc, pzErr);
    }
  }
  for(i=0; i<nList; i++) sqlite3_free(azList[i]);
  sqlite3_free(azList);
  return rc;
}

/* sync_reidentify(): give this database the node id zUuid (a cloned file
** must not share its original's id).  The capture triggers hold the id, so
** they are rewritten in the same savepoint; the guard trigger that refuses
** a bare UPDATE of node_id is lifted for the moment. */
int syncq_reidentify(sqlite3 *db, const char *zUuid, char **pzErr){
  int nRepaired = 0;
  int rc;

  rc = savepointBegin(db, "syncq_reidentify", pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = syncq_ensure_schema(db, pzErr);
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr, "DROP TRIGGER main.syncq_node_id_fixed");
  }
  if( rc==SQLITE_OK ){
    rc = execPrintf(db, pzErr, "UPDATE main.syncq_state SET node_id = %Q",
                    zUuid);
  }
  if( rc==SQLITE_OK ) rc = sqlite3_exec(db, zSchemaSql, 0, 0, pzErr);
  if( rc==SQLITE_OK ) rc = syncq_repair(db, &nRepaired, pzErr);
  return savepointEnd(db, "syncq_reidentify", rc, pzErr);
}

/* The temporary triggers write a row's sum as an upsert: an INSERT OR
** REPLACE in a trigger takes the conflict policy of the statement that
** fires it (ABORT for syncqd's upserts), an upsert clause does not. */
#define SUM_UPSERT \
  " ON CONFLICT(table_name, pk) DO UPDATE SET sum = excluded.sum"

/* Appends the statement that writes the sum of row NEW of pTab. */
static void appendSumPut(sqlite3_str *pStr, const SyncqTable *pTab){
  sqlite3_str_appendf(pStr,
      "INSERT INTO syncq_rowsums(table_name, pk, sum) VALUES(%Q, ",
      pTab->zName);
  appendObject(pStr, pTab, "NEW", 1, ", ");
  sqlite3_str_appendall(pStr, ", ");
  appendRowsum(pStr, pTab, "NEW");
  sqlite3_str_appendall(pStr, ")" SUM_UPSERT ";");
}

/* Appends the statement that drops the sum of row OLD of pTab. */
static void appendSumDrop(sqlite3_str *pStr, const SyncqTable *pTab){
  sqlite3_str_appendf(pStr,
      "DELETE FROM syncq_rowsums WHERE table_name = %Q AND pk = ", pTab->zName);
  appendObject(pStr, pTab, "OLD", 1, ", ");
  sqlite3_str_appendall(pStr, ";");
}

/* syncq_sums_watch(): on this connection (syncqd's), temporary triggers
** keep the row sums of the rows it writes into each tracked table (the
** hub's changes it applies, with capture paused; the keys it renames), so
** that a later repair does not take them for writes its triggers missed.
** Rewritten from the tables' shapes now: syncqd calls it after every
** repair.  (A temporary trigger may not name main.syncq_rowsums; the name
** alone finds it, a temporary table of that name being unlikely.)  *pnTable is the number of tables watched. */
int syncq_sums_watch(sqlite3 *db, int *pnTable, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *pStr = sqlite3_str_new(0);
  char *zSql = 0;
  int rc;

  *pnTable = 0;
  rc = sqlite3_prepare_v2(db,
      "SELECT name FROM temp.sqlite_schema"
      " WHERE type = 'trigger' AND name GLOB 'syncq_sum_*'", -1, &pStmt, 0);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_str_appendf(pStr, "DROP TRIGGER temp.\"%w\";",
                        (const char*)sqlite3_column_text(pStmt, 0));
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = setDbError(db, pzErr, sqlite3_errcode(db));
  }
  if( rc==SQLITE_OK && hasTable(db, "syncq_rowsums") ){
    rc = sqlite3_prepare_v2(db,
        "SELECT t.table_name FROM main.syncq_tracked AS t"
        " JOIN main.sqlite_schema AS s ON s.type = 'table'"
        "  AND s.name = t.table_name ORDER BY 1", -1, &pStmt, 0);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      SyncqTable tab;
      const char *zName = (const char*)sqlite3_column_text(pStmt, 0);
      char *zErr = 0;
      if( tableLoad(db, zName, &tab, &zErr)!=SQLITE_OK ){
        sqlite3_free(zErr);       /* no key any more: nothing to sum */
        continue;
      }
      /* put: a row written; set: a row updated, same key; key: its key
      ** changed (the old key's sum goes); del: a row deleted */
      sqlite3_str_appendf(pStr,
          "CREATE TEMP TRIGGER \"syncq_sum_put:%w\" AFTER INSERT ON main.\"%w\""
          " BEGIN ", tab.zName, tab.zName);
      appendSumPut(pStr, &tab);
      sqlite3_str_appendf(pStr,
          " END; CREATE TEMP TRIGGER \"syncq_sum_set:%w\" AFTER UPDATE ON main.\"%w\""
          " WHEN ", tab.zName, tab.zName);
      appendKeyTest(pStr, &tab, 0);
      sqlite3_str_appendall(pStr, " BEGIN ");
      appendSumPut(pStr, &tab);
      sqlite3_str_appendf(pStr,
          " END; CREATE TEMP TRIGGER \"syncq_sum_key:%w\" AFTER UPDATE ON main.\"%w\""
          " WHEN ", tab.zName, tab.zName);
      appendKeyTest(pStr, &tab, 1);
      sqlite3_str_appendall(pStr, " BEGIN ");
      appendSumDrop(pStr, &tab);
      appendSumPut(pStr, &tab);
      sqlite3_str_appendf(pStr,
          " END; CREATE TEMP TRIGGER \"syncq_sum_del:%w\" AFTER DELETE ON main.\"%w\""
          " BEGIN ", tab.zName, tab.zName);
      appendSumDrop(pStr, &tab);
      sqlite3_str_appendall(pStr, " END;");
      tableClear(&tab);
      (*pnTable)++;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
      rc = setDbError(db, pzErr, sqlite3_errcode(db));
    }
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(sqlite3_str_finish(pStr));
    return rc;
  }
  rc = strDone(pStr, &zSql);
  if( rc==SQLITE_OK && zSql ){
    rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  }
  sqlite3_free(zSql);
  return rc;
}
