/*
 * watch.c — how syncqd learns that the SQLite side has something to ship
 * (docs/daemon.md, docs/sqlite_capture.md).
 *
 *   the wake file   A connection that loaded the syncq extension writes
 *                   <db>-syncq-wake when it commits an immediate change, and
 *                   sync_trigger() writes it at once. inotify on the file's
 *                   directory reports it the moment it is written (not when
 *                   the writer closes it: that is no news).
 *   data_version    A plain connection (the app's stock driver) writes no
 *                   wake file. PRAGMA data_version on syncqd's connection
 *                   moves whenever another connection committed; then the
 *                   queue is asked whether an immediate change of this node
 *                   arrived. The daemon polls it every WATCH_POLL_MS, and at
 *                   once, for a short while, after inotify saw the database
 *                   or its WAL written.
 *   schema_version  Moved: sync_repair() brings the capture triggers up to
 *                   date (a column added, a table renamed).
 *
 * A watch belongs to the daemon's thread and uses the client's connection.
 *
 *   watch_open, watch_close   start and stop watching a client's file
 *   watch_fd                  the inotify descriptor, for poll()
 *   watch_read                what inotify saw
 *   watch_poll                what data_version and the queue say
 */
#include "base/base.h"
#include "base/buf.h"
#include "client/client.h"
#include "client/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

struct Watch
{
	Client	   *cl;
	int			fd;				/* inotify, or -1 */
	char	   *dir;			/* the directory of the database file */
	char	   *wake_name;		/* <db>-syncq-wake, base name */
	char	   *db_name;		/* base names of the file and its WAL */
	char	   *wal_name;
	int64_t		data_version;
	int64_t		schema_version;
	int64_t		last_seq;		/* the queue's greatest seq looked at */
	sqlite3_stmt *queue_probe;
};

/* The base name of path (malloc'd) and its directory (malloc'd). */
static void
split_path(const char *path, char **dir, char **base)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
	{
		*dir = xstrdup(".");
		*base = xstrdup(path);
		return;
	}
	*base = xstrdup(slash + 1);
	if (slash == path)
		*dir = xstrdup("/");
	else
	{
		*dir = xmalloc((size_t) (slash - path) + 1);
		memcpy(*dir, path, (size_t) (slash - path));
		(*dir)[slash - path] = '\0';
	}
}

/*
 * Start watching the client's file. Without inotify (a file system that
 * has none, no watches left) the watch still works by polling alone, with
 * a warning.
 */
Watch *
watch_open(Client *cl, char *err, size_t errlen)
{
	Watch	   *w = xcalloc(1, sizeof(Watch));
	const char *file = sqlite3_db_filename(cl->db, "main");
	char	   *base;
	int			rc;
	Buf			b = {0};

	w->cl = cl;
	w->fd = -1;
	if (file == NULL || *file == '\0')
		file = cl->path;
	split_path(file, &w->dir, &base);
	buf_printf(&b, "%s%s", base, SYNCQ_WAKE_SUFFIX);
	w->wake_name = b.p;
	memset(&b, 0, sizeof(b));
	buf_printf(&b, "%s-wal", base);
	w->wal_name = b.p;
	w->db_name = base;

	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 ||
		inotify_add_watch(w->fd, w->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
	{
		logmsg(LOG_WARNING, "cannot watch directory \"%s\" (%s): noticing local changes by polling alone",
			   w->dir, strerror(errno));
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
	}

	w->data_version = client_query_int(cl->db, "PRAGMA data_version", &rc);
	if (rc == SQLITE_OK)
		w->schema_version = client_query_int(cl->db, "PRAGMA schema_version", &rc);
	if (rc == SQLITE_OK)
		w->last_seq = client_query_int(cl->db, "SELECT coalesce(max(seq), 0) FROM sync_queue", &rc);
	if (rc != SQLITE_OK)
	{
		snprintf(err, errlen, "client \"%s\": reading the file's version: %s", cl->path, sqlite3_errmsg(cl->db));
		watch_close(w);
		return NULL;
	}
	client_note_boundary(cl, w->last_seq);
	return w;
}

void
watch_close(Watch *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	sqlite3_finalize(w->queue_probe);
	free(w->dir);
	free(w->wake_name);
	free(w->db_name);
	free(w->wal_name);
	free(w);
}

int
watch_fd(const Watch *w)
{
	return w->fd;
}

/*
 * Drain the inotify events: WATCH_WAKE if the wake file was written,
 * WATCH_WRITTEN if the database or its WAL was.
 */
int
watch_read(Watch *w)
{
	char		buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	int			what = 0;

	if (w->fd < 0)
		return 0;
	for (;;)
	{
		ssize_t		n = read(w->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;)
		{
			const struct inotify_event *ev = (const struct inotify_event *) p;

			if (ev->mask & IN_Q_OVERFLOW)
				what |= WATCH_WAKE | WATCH_WRITTEN;
			else if (ev->len > 0)
			{
				if (strcmp(ev->name, w->wake_name) == 0)
					what |= WATCH_WAKE;
				else if (strcmp(ev->name, w->wal_name) == 0 || strcmp(ev->name, w->db_name) == 0)
					what |= WATCH_WRITTEN;
			}
			p += sizeof(struct inotify_event) + ev->len;
		}
	}
	return what;
}

/*
 * Has another connection committed since the last look? Then: did an
 * immediate change of this node reach the queue (WATCH_IMMEDIATE), did
 * the schema move (sync_repair() is run)? Returns those bits, WATCH_CHANGED
 * for any commit, or -1 with err (the database could not be read; the
 * caller retries later).
 */
int
watch_poll(Watch *w, char *err, size_t errlen)
{
	sqlite3    *db = w->cl->db;
	int			rc,
				what;
	int64_t		v = client_query_int(db, "PRAGMA data_version", &rc);

	if (rc != SQLITE_OK)
		goto dberr;
	if (v == w->data_version)
		return 0;
	what = WATCH_CHANGED;

	if (w->queue_probe == NULL &&
		sqlite3_prepare_v2(db, "SELECT max(seq), max(CASE WHEN priority = '" SYNCQ_PRIORITY_IMMEDIATE "' AND origin = ?2 THEN seq END)"
						   " FROM sync_queue WHERE seq > ?1", -1, &w->queue_probe, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(w->queue_probe, 1, w->last_seq);
	sqlite3_bind_text(w->queue_probe, 2, client_node_id(w->cl), -1, SQLITE_STATIC);
	rc = sqlite3_step(w->queue_probe);
	if (rc == SQLITE_ROW)
	{
		if (sqlite3_column_type(w->queue_probe, 0) != SQLITE_NULL)
		{
			/* a transaction ends here: an upload may be split after it */
			w->last_seq = sqlite3_column_int64(w->queue_probe, 0);
			client_note_boundary(w->cl, w->last_seq);
		}
		if (sqlite3_column_type(w->queue_probe, 1) != SQLITE_NULL)
			what |= WATCH_IMMEDIATE;
		rc = SQLITE_OK;
	}
	sqlite3_reset(w->queue_probe);
	if (rc != SQLITE_OK)
		goto dberr;

	{
		int64_t		s = client_query_int(db, "PRAGMA schema_version", &rc);

		if (rc != SQLITE_OK)
			goto dberr;
		if (s != w->schema_version)
		{
			if (client_follow_schema(w->cl, err, errlen) < 0)
				return -1;
			sqlite3_finalize(w->queue_probe);
			w->queue_probe = NULL;
			w->schema_version = w->cl->schema_version;
			what |= WATCH_SCHEMA;
		}
	}
	/* only now: a failure above looks again next time */
	w->data_version = v;
	return what;
dberr:
	snprintf(err, errlen, "client \"%s\": watching for changes: %s", w->cl->path, sqlite3_errmsg(db));
	return -1;
}
