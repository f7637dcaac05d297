/*
 * capture.c — how syncqd's own writes stay out of the SQLite queue
 * (client.h).
 *
 * syncqd applies the hub's changes with capture paused (syncq_state.paused,
 * docs/sqlite_capture.md) inside its write transaction: the changes it
 * writes came from the hub and must not travel back. SQLite has one writer
 * at a time, so no app write can happen while the pause is on, and the
 * user's own pause setting (a bulk import) is put back before commit.
 *
 *   capture_pause    inside the apply transaction: pause, remembering the setting
 *   capture_resume   before commit: capture as the user had it
 */
#include "base/base.h"
#include "client/client.h"

#include <stdio.h>
#include <string.h>

static int
set_paused(Client *cl, int paused, char *err, size_t errlen)
{
	char		sql[64];

	snprintf(sql, sizeof(sql), "UPDATE syncq_state SET paused = %d", paused ? 1 : 0);
	if (sqlite3_exec(cl->db, sql, NULL, NULL, NULL) != SQLITE_OK)
	{
		snprintf(err, errlen, "client \"%s\": pausing capture: %s", cl->path, sqlite3_errmsg(cl->db));
		return -1;
	}
	return 0;
}

/* Inside the apply transaction: pause capture, remembering the setting. */
int
capture_pause(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(cl->db, "SELECT paused FROM syncq_state", -1, &st, NULL) != SQLITE_OK)
	{
		snprintf(err, errlen, "client \"%s\": reading syncq_state: %s", cl->path, sqlite3_errmsg(cl->db));
		return -1;
	}
	cl->saved_paused = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return set_paused(cl, 1, err, errlen);
}

/* Before commit: capture as the user had it. */
int
capture_resume(Client *cl, char *err, size_t errlen)
{
	return set_paused(cl, cl->saved_paused, err, errlen);
}

