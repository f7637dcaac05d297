/*
** capture_conn.c - what a connection that loaded syncq adds to capture.
**
** The capture triggers are plain SQL and work everywhere.  A connection
** that loaded the extension adds two things the triggers cannot do alone:
**
**   txid     The triggers fill sync_queue.txid with
**            sqlite_compileoption_get(SYNCQ_TXID_IMMEDIATE or _BATCHED).
**            Stock SQLite answers NULL for a negative argument.  Here the
**            function is overridden on this connection: for those two
**            arguments it returns the txid of the open transaction (a
**            random positive 63-bit integer, drawn on the first change and
**            forgotten by the commit and rollback hooks); for any other
**            argument it does exactly what the built-in does.
**
**   origin   sync_apply_origin(uuid), called by syncqd inside the
**            transaction that applies another node's changes, makes
**            sqlite_compileoption_get(SYNCQ_APPLY_ORIGIN) return that id
**            until the transaction ends; the triggers write it instead of
**            this node's id.  It lives in this connection only, so no other
**            writer can ever see it, and the hooks forget it at the end.
**
**   wake-up  When a transaction that queued an immediate change commits,
**            the commit hook writes the file <database>-syncq-wake (the
**            current Unix time in milliseconds), which syncqd watches.
**            The hook runs just before the commit is visible: syncqd reads
**            after taking the write lock (BEGIN IMMEDIATE) or retries once
**            PRAGMA data_version moves.  sync_trigger() writes it at once.
**
** SQLite keeps one commit hook and one rollback hook per connection:
** loading syncq replaces any the application set before, and an
** application that sets its own afterwards turns txid grouping and the
** wake-up off on that connection (capture itself is unaffected).
*/
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
# define _POSIX_C_SOURCE 200809L
#endif
#include "capture.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
# include <fcntl.h>
# include <unistd.h>
#endif

struct SyncqConn {
  sqlite3 *db;                 /* the connection */
  int nRef;                    /* references: functions + the creator */
  int bHooked;                 /* the hooks point at this object */
  sqlite3_int64 iTxid;         /* txid of the open transaction, 0 if none */
  int bImmediate;              /* it queued an immediate change */
  int fdWake;                  /* the open wake file, or -1 */
  char zApplyOrigin[40];       /* sync_apply_origin() of this transaction */
};

/* A new state object for db, holding one reference (the creator's). */
SyncqConn *syncq_conn_new(sqlite3 *db){
  SyncqConn *p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->nRef = 1;
  p->fdWake = -1;
  return p;
}

void syncq_conn_ref(SyncqConn *p){
  p->nRef++;
}

/* Drops a reference.  The last one goes when the connection closes (or,
** by misuse, when every syncq function was registered over); the hooks
** are then detached so that they cannot outlive the object.  SQLite does
** not say whose hook is installed, so this may detach an application's
** hook too; at close that does not matter. */
void syncq_conn_unref(void *pArg){
  SyncqConn *p = (SyncqConn*)pArg;
  if( p==0 || --p->nRef>0 ) return;
  if( p->bHooked ){
    sqlite3_commit_hook(p->db, 0, 0);
    sqlite3_rollback_hook(p->db, 0, 0);
  }
#ifndef _WIN32
  if( p->fdWake>=0 ) close(p->fdWake);
#endif
  sqlite3_free(p);
}

/* The txid of the open transaction; bImmediate notes that it queued an
** immediate change. */
sqlite3_int64 syncq_conn_txid(SyncqConn *p, int bImmediate){
  if( p->iTxid==0 ){
    sqlite3_uint64 u = 0;
    while( u==0 ){
      sqlite3_randomness(sizeof(u), &u);
      u &= (((sqlite3_uint64)1)<<63) - 1;
    }
    p->iTxid = (sqlite3_int64)u;
  }
  if( bImmediate ) p->bImmediate = 1;
  return p->iTxid;
}

/* Writes the wake file of the main database.  Returns 1 if written, 0 if
** the database has no file (in-memory, temporary) or it could not be
** written; capture never fails because of the wake-up. */
int syncq_conn_wake(SyncqConn *p){
#ifdef _WIN32
  (void)p;
  return 0;
#else
  char zBuf[32];
  struct timespec ts;
  int n;

  if( p->fdWake<0 ){
    const char *zDb = sqlite3_db_filename(p->db, "main");
    char *zPath;
    if( zDb==0 || zDb[0]==0 ) return 0;
    zPath = sqlite3_mprintf("%s%s", zDb, SYNCQ_WAKE_SUFFIX);
    if( zPath==0 ) return 0;
    p->fdWake = open(zPath, O_WRONLY|O_CREAT|O_CLOEXEC, 0666);
    sqlite3_free(zPath);
    if( p->fdWake<0 ) return 0;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  n = snprintf(zBuf, sizeof(zBuf), "%lld\n",
               (long long)ts.tv_sec*1000 + ts.tv_nsec/1000000);
  if( pwrite(p->fdWake, zBuf, (size_t)n, 0)!=n ) return 0;
  return 1;
#endif
}

/* The node id sync_apply_origin() set for this transaction, or NULL. */
const char *syncq_conn_apply_origin(SyncqConn *p){
  return p->zApplyOrigin[0] ? p->zApplyOrigin : 0;
}

/* Sets (a UUID, checked by the caller) or clears (NULL) the origin of the
** changes of this transaction. */
void syncq_conn_set_apply_origin(SyncqConn *p, const char *zUuid){
  size_t n = zUuid ? strlen(zUuid) : 0;
  if( n>=sizeof(p->zApplyOrigin) ) n = 0;
  memcpy(p->zApplyOrigin, zUuid ? zUuid : "", n);
  p->zApplyOrigin[n] = 0;
}

/* The end of a transaction: its txid and apply origin are forgotten. */
static void transactionEnded(SyncqConn *p){
  p->iTxid = 0;
  p->bImmediate = 0;
  p->zApplyOrigin[0] = 0;
}

/* Commit hook: wake syncqd if the transaction queued an immediate change.
** Never turns the commit into a rollback. */
static int syncqCommitHook(void *pArg){
  SyncqConn *p = (SyncqConn*)pArg;
  if( p->bImmediate ) syncq_conn_wake(p);
  transactionEnded(p);
  return 0;
}

/* Rollback hook. */
static void syncqRollbackHook(void *pArg){
  transactionEnded((SyncqConn*)pArg);
}

void syncq_conn_install_hooks(SyncqConn *p){
  sqlite3_commit_hook(p->db, syncqCommitHook, p);
  sqlite3_rollback_hook(p->db, syncqRollbackHook, p);
  p->bHooked = 1;
}

/*
** sqlite_compileoption_get(N), overridden on this connection.
**
** For N = SYNCQ_TXID_IMMEDIATE or SYNCQ_TXID_BATCHED: the transaction's
** txid.  For N = SYNCQ_APPLY_ORIGIN: the origin syncqd set with
** sync_apply_origin(), or NULL.  Any other N: what the built-in returns
** (the N-th compile-time option, or NULL).
*/
void syncq_compileoption_get(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv){
  SyncqConn *p = (SyncqConn*)sqlite3_user_data(ctx);
  int n = sqlite3_value_int(argv[0]);
  (void)argc;
  if( n==SYNCQ_TXID_IMMEDIATE || n==SYNCQ_TXID_BATCHED ){
    sqlite3_result_int64(ctx, syncq_conn_txid(p, n==SYNCQ_TXID_IMMEDIATE));
    return;
  }
  if( n==SYNCQ_APPLY_ORIGIN ){
    const char *z = syncq_conn_apply_origin(p);
    if( z ) sqlite3_result_text(ctx, z, -1, SQLITE_TRANSIENT);
    return;                                   /* NULL: this node's own */
  }
#ifdef SYNCQ_SQLITE_EXTENSION
  if( sqlite3_api->compileoption_get==0 ){   /* host omitted the diags */
    sqlite3_result_null(ctx);
    return;
  }
#endif
  sqlite3_result_text(ctx, sqlite3_compileoption_get(n), -1, SQLITE_STATIC);
}
