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
**
** Each subsystem registers its own functions; a failure stops the load and
** names what failed in *pzErrMsg.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#include "tz.h"
#include "capture.h"

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
  rc = syncq_time_register(db, pzErrMsg);
  if( rc==SQLITE_OK ) rc = syncq_capture_register(db, pzErrMsg);
  return rc;
}
