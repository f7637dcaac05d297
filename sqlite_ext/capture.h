/*
** capture.h - change capture for the syncq SQLite extension.
**
** The capture subsystem is four files:
**
**   capture.c           the SQL functions (sync_track, sync_enqueue, ...)
**                       and their registration
**   capture_triggers.c  the syncq tables and the schema triggers: writing
**                       their SQL, installing, checking and repairing them
**                       (and queueing, by the row sums, what a rebuilt
**                       table's missing triggers did not see)
**   capture_rowsums.c   the row sums: syncq_rowsum(), syncq_rowsum_of(),
**                       syncq_rowsum_same()
**   capture_conn.c      per-connection state of a connection that loaded
**                       the extension: txid, the wake-up file, the hooks
**
** The triggers are plain SQL, so a connection that never loaded the
** extension still captures every change.  docs/sqlite_capture.md is the
** design; docs/queue.md is the sync_queue contract.
**
** Compiled with -DSYNCQ_SQLITE_EXTENSION the files use the loadable
** extension API (sqlite3ext.h); without it (linked into a program such as
** syncqd) they call libsqlite3 directly.
*/
#ifndef SYNCQ_CAPTURE_H
#define SYNCQ_CAPTURE_H

#ifdef SYNCQ_SQLITE_EXTENSION
# include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3
#else
# include <sqlite3.h>
#endif

/* ----------------------------------------------------------------------
** Contract with syncqd (see docs/sqlite_capture.md).
*/

/* The names syncqd and the PostgreSQL extension share with us: the queue,
** the priorities, the wake-up file (SYNCQ_WAKE_SUFFIX: a committed
** immediate change is signalled by writing "<database>-syncq-wake"), the
** blob tag of the queue's JSON. */
#include "syncq_contract.h"

/* The capture triggers call sqlite_compileoption_get(N) with these N for
** the txid column.  Stock SQLite returns NULL for a negative N; a
** connection that loaded syncq overrides the function and returns the
** transaction's txid (and, for the first, notes an immediate change). */
#define SYNCQ_TXID_IMMEDIATE (-7301)
#define SYNCQ_TXID_BATCHED   (-7302)

/* And with this N for the origin: NULL in stock SQLite and normally here
** too (the trigger then writes this node's id, which it holds as a
** literal); the node id given to sync_apply_origin() while syncqd applies
** another node's changes in the current transaction. */
#define SYNCQ_APPLY_ORIGIN   (-7303)

/* Registers every capture SQL function on db and installs the commit and
** rollback hooks.  Returns SQLITE_OK or an error code with *pzErrMsg set
** (sqlite3_malloc'd). */
int syncq_capture_register(sqlite3 *db, char **pzErrMsg);

/* ----------------------------------------------------------------------
** Internal to the capture files.
*/

/* The version of syncq's own tables in a SQLite file (syncq_schema):
** 1 is syncq 0.1.0 (which had no syncq_schema); 2 and 3 are 0.2.0 (3:
** syncq_tracked.keys); 4 adds syncq_rowsums and syncq_tracked.summed.  Raise it, and add a step to aMigrate in
** capture_triggers.c, for every change to those tables. */
#define SYNCQ_SCHEMA_VERSION 4

/* capture_triggers.c.  Each returns an SQLite result code; on failure
** *pzErr, when not NULL, is set to a sqlite3_malloc'd message (without a
** function name; the caller adds it). */
int syncq_ensure_schema(sqlite3 *db, char **pzErr);
int syncq_resolve_table(sqlite3 *db, const char *zTable, char **pzName,
                        char **pzErr);
int syncq_track(sqlite3 *db, const char *zTable, const char *zPriority,
                const char *zKeys, const char *zForms, char **pzErr);
int syncq_untrack(sqlite3 *db, const char *zTable, int *pbWasTracked,
                  char **pzErr);
int syncq_repair(sqlite3 *db, int *pnRepaired, char **pzErr);
int syncq_fill(sqlite3 *db, int nMax, sqlite3_int64 *piUpto, int *pnFilled,
               char **pzErr);
int syncq_reidentify(sqlite3 *db, const char *zUuid, char **pzErr);
int syncq_sums_watch(sqlite3 *db, int *pnTable, char **pzErr);

/* capture_rowsums.c: registers syncq_rowsum() and syncq_rowsum_same(). */
int syncq_rowsums_register(sqlite3 *db);

/* The current time as SQL text, for bookkeeping columns (tracked_at). */
#define SYNCQ_NOW_EXPR "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* The SQL expression of a captured change's changed_at: its version, a
** hybrid logical clock in UTC microseconds, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
** (docs/replication.md, Versions).  The greatest of
**   - the wall clock (SQLite's 'now' has millisecond resolution),
**   - syncq_state.next, which syncqd raises past every version it applies,
**   - the newest queue row's changed_at (never deleted: docs/queue.md), so
**     a node never stamps a change lower than one it made before.
** All three are the same fixed-width text, so max() of the texts is the
** max of the instants; coalesce keeps a missing state row or an empty
** queue from making it NULL.  Plain SQL: it runs in the triggers of
** connections that never loaded syncq. */
#define SYNCQ_VERSION_EXPR \
  "max(strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')," \
  " coalesce((SELECT next FROM syncq_state), '')," \
  " coalesce((SELECT changed_at FROM sync_queue WHERE changed_at GLOB" \
  " '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'" \
  " ORDER BY seq DESC LIMIT 1), ''))"

/* capture_conn.c: the state of one connection that loaded the extension,
** shared by the functions registered on it (reference counted). */
typedef struct SyncqConn SyncqConn;

SyncqConn *syncq_conn_new(sqlite3 *db);
void syncq_conn_ref(SyncqConn *pConn);
void syncq_conn_unref(void *pConn);        /* xDestroy of the functions */
void syncq_conn_install_hooks(SyncqConn *pConn);
sqlite3_int64 syncq_conn_txid(SyncqConn *pConn, int bImmediate);
int syncq_conn_wake(SyncqConn *pConn);
const char *syncq_conn_apply_origin(SyncqConn *pConn);
void syncq_conn_set_apply_origin(SyncqConn *pConn, const char *zUuid);
void syncq_compileoption_get(sqlite3_context*, int, sqlite3_value**);

#endif /* SYNCQ_CAPTURE_H */
