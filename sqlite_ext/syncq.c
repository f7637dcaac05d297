/*
** syncq.c — entry point of the syncq SQLite loadable extension.
**
**   .load ./syncq            (sqlite3 shell)
**   SELECT load_extension('./syncq');
**
** Registers the SQL vocabulary shared with the PostgreSQL extension:
**
**   eastern_date(), eastern_date(ts), eastern_now(), utc_to_eastern(ts),
**   zone_date(ts, zone), zone_time(ts, zone)          -- timefuncs.c
**   sync_track(t [, priority]), sync_untrack(t), sync_enqueue(t, op, pk,
**   row [, immediate]), sync_trigger(), sync_node_id(), is_online_server(),
**   sync_pause(), sync_resume(), sync_repair()        -- capture.c
**   syncq_version()                                   -- here: '0.2.0', as
**                       syncqd --version and the hub's syncq_version()
**
** Each subsystem registers its own functions; a failure stops the load and
** names what failed in *pzErrMsg.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#include "tz.h"
#include "capture.h"
#include "syncq_contract.h"

/*
** syncq_version(): the version of this extension (SYNCQ_VERSION), the same
** text as `syncqd --version` and the hub's SELECT syncq_version().
*/
static void syncqVersionFunc(
  sqlite3_context *ctx,
  int argc,
  sqlite3_value **argv
){
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, SYNCQ_VERSION, -1, SQLITE_STATIC);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_syncq_init(
  sqlite3 *db,
  char **pzErrMsg,
  const sqlite3_api_routines *pApi
){
  int rc;
  SQLITE_EXTENSION_INIT2(pApi);
  rc = sqlite3_create_function(db, "syncq_version", 0,
          SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS, 0,
          syncqVersionFunc, 0, 0);
  if( rc!=SQLITE_OK ){
    *pzErrMsg = sqlite3_mprintf("syncq: cannot register syncq_version(): %s",
                                sqlite3_errmsg(db));
    return rc;
  }
  rc = syncq_time_register(db, pzErrMsg);
  if( rc==SQLITE_OK ) rc = syncq_capture_register(db, pzErrMsg);
  return rc;
}
