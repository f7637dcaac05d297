/*
 * control.c — the control API on --control HOST:PORT (docs/daemon.md).
 *
 *   GET  /api/sync/status    what syncqd is doing, as JSON
 *   POST /api/sync/trigger   sync now; at most one per HTTP_TRIGGER_GAP_S
 *                            seconds, else 429 with Retry-After
 *   GET  /                   the same status as a page a person reads
 *                            (statuspage.c)
 *   GET  /auto_sync.js       web/auto_sync.js, built in, for an app's pages
 *
 * Whom it answers (check_caller; docs/security.md): a request whose Host
 * does not name this API (a loopback name, or the host it listens on, and
 * its port: a DNS rebinding page names its own) gets 403, and so does one
 * from a page of an origin the app did not give (--allow-origin) nor this
 * API's own. The JSON answers carry Access-Control-Allow-Origin for the
 * allowed origins alone, and the trigger answers their CORS preflight
 * (OPTIONS), so that auto_sync.js on an app's page can ask for a sync and
 * read the answer. The status carries row values (the keys of set-aside
 * changes, the values error messages quote) only for an allowed origin or
 * for the person who asked for the page (Sec-Fetch-Site: none); for anyone
 * else the keys are null and the quoted values "…" (jredacted).
 *
 * libmicrohttpd serves it on a thread of its own. That thread never touches
 * the daemon's connections: it reads the status the loop publishes (under
 * a mutex), reads the queue through a read-only SQLite connection of its
 * own, and asks for a sync by writing to an eventfd the loop polls. Every
 * answer but the page and the script is JSON; a bad method, path or body
 * gets a 4xx with {"error": "..."} (http.c).
 *
 *   control_check_address   --control's HOST:PORT
 *   control_check_origin    an --allow-origin
 *   check_caller (static)   whom it answers: Host, Origin
 *   control_start, control_stop   the server, on a thread of its own
 *   control_wake_fd, control_take_trigger   the trigger, for the loop
 *   control_set_state, control_set_hub, control_set_next_periodic,
 *   control_sync_done, control_set_hub_errors   what the loop publishes
 *   build_status (static)   the status document
 */
#include "base/base.h"
#include "base/buf.h"
#include "http/control.h"
#include "http/http.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http/statuspage.h"
#include "tz.h"

/* web/auto_sync.js: auto_sync_js[], auto_sync_js_len (made by the Makefile) */
#include "auto_sync_js.h"

/* The largest request body accepted (the trigger takes none). */
#define BODY_MAX 4096

/* Set-aside changes listed in the status, per side. */
#define STATUS_ERRORS_MAX 20

struct Control
{
	HttpServer	http;
	int			efd;			/* eventfd: a trigger for the loop */
	char	   *db_path;
	char		node_id[NODE_ID_LEN + 1];
	int64_t		started_us;

	/* whom it answers (check_caller): its own host name (the port is
	 * http.port), and the origins of the app's pages (--allow-origin) */
	char		host[256];
	char	  **origins;
	int			norigins;

	/* the HTTP thread's own */
	sqlite3    *db;
	SyncqTz    *tz;
	HttpRateLimit trigger;

	/* published by the loop */
	pthread_mutex_t mu;
	DaemonState state;
	int64_t		retry_at_us;
	char		hub_node_id[NODE_ID_LEN + 1];
	bool		hub_connected;
	int64_t		next_periodic_us;
	bool		have_last;
	bool		last_ok;
	int64_t		last_at_us;
	double		last_secs;
	SyncStats	last_st;
	char		last_error[1024];
	int64_t		last_success_us;
	bool		clock_known;	/* the hub's clock against ours, last sync that had it */
	int64_t		clock_offset_us;
	long		syncs_ok;
	long		syncs_failed;
	long		hub_err_count;	/* -1: not known yet */
	HubError   *hub_errs;
	int			n_hub_errs;
	long		hub_conflicts;	/* -1: not known yet */
};

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for microseconds since 1970, or null. */
static json_t *
jinstant(int64_t us)
{
	char	   *s;
	json_t	   *j;

	if (us <= 0)
		return json_null();
	s = format_instant_us(us);
	j = json_string(s);
	free(s);
	return j;
}

static json_t *
jseconds(double s)
{
	return json_real(round(s * 1000.0) / 1000.0);
}

/* ---- the parts of the status ------------------------------------------- */

/*
 * An error message without the values it quotes: what stands in double
 * quotes, in braces (a key as JSON) or after ")=(" (PostgreSQL's "Key
 * (id)=(5)") becomes "…". For an answer to a caller that is neither an
 * allowed origin nor the person (check_caller): a message of the hub or
 * the file may carry a row's values.
 */
static json_t *
jredacted(const char *s)
{
	Buf			b = {0};
	json_t	   *j;

	if (s == NULL)
		return json_null();
	for (const char *p = s; *p;)
	{
		const char *end = NULL;

		if (*p == '"')
			end = strchr(p + 1, '"');
		else if (*p == '{')
			end = strrchr(p, '}');
		else if (*p == '(' && p > s + 1 && p[-1] == '=' && p[-2] == ')')
			end = strchr(p + 1, ')');
		if (end == NULL)
		{
			buf_putc(&b, *p++);
			continue;
		}
		buf_putc(&b, *p);
		buf_puts(&b, "\u2026");
		buf_putc(&b, *end);
		p = end + 1;
	}
	j = http_jtext(b.p ? b.p : "");
	buf_free(&b);
	return j;
}

/* A message as it is (detail), or without the values it quotes. */
static json_t *
jmessage(const char *s, bool detail)
{
	return detail ? http_jtext(s) : jredacted(s);
}

static const char *
state_name(DaemonState s)
{
	switch (s)
	{
		case STATE_STARTING:
			return "starting";
		case STATE_IDLE:
			return "idle";
		case STATE_CONNECTING:
			return "connecting";
		case STATE_SYNCING:
			return "syncing";
		case STATE_RETRY_WAIT:
			return "waiting to retry";
		case STATE_STOPPING:
			return "stopping";
	}
	return "?";
}

/* Time zone facts: zone, current offset, Eastern date, the time now. */
static json_t *
tz_status(Control *c, int64_t now)
{
	json_t	   *o = json_object();
	int64_t		sec = now / 1000000;
	int32_t		usec = (int32_t) (now % 1000000);
	int			off = 0;
	char		date[SYNCQ_DATE_BUFSZ],
				wall[SYNCQ_WALL_BUFSZ],
				offs[16];

	json_object_set_new(o, "zone", json_string("America/New_York"));
	if (c->tz == NULL || syncq_tz_offset(c->tz, sec, &off) != 0 ||
		syncq_format_date(date, sec, off) < 0 ||
		syncq_format_wall(wall, sec, usec, off, SYNCQ_FMT_USEC) < 0)
	{
		json_object_set_new(o, "error", json_string("the time zone engine failed"));
		return o;
	}
	snprintf(offs, sizeof(offs), "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 3600, abs(off) % 3600 / 60);
	json_object_set_new(o, "utc_offset", json_string(offs));
	json_object_set_new(o, "utc_offset_seconds", json_integer(off));
	json_object_set_new(o, "eastern_date", json_string(date));
	json_object_set_new(o, "now", json_string(wall));
	json_object_set_new(o, "now_utc", jinstant(now));
	return o;
}

/*
 * What the file says: queue depth per table and priority, the oldest
 * pending change (the lag), the changes set aside here (not those the hub
 * holds set aside, kept here too), conflicts here.
 * Fills *lag_s and *down_errors; returns the queue object or NULL with
 * *why set (the file could not be read now).
 */
static json_t *
db_status(Control *c, bool detail, int64_t now, double *lag_s, json_t **down_errors, long *conflicts,
		  const char **why)
{
	sqlite3_stmt *st = NULL;
	json_t	   *q = json_object(),
			   *tables = json_object(),
			   *errs = json_object(),
			   *list = json_array();
	long		total = 0,
				nerr = 0;
	int64_t		oldest = 0;
	int			rc;

	*lag_s = 0;
	*conflicts = -1;
	if (c->db == NULL)
	{
		*why = "the database is not open";
		goto fail;
	}
	rc = sqlite3_prepare_v2(c->db,
							"SELECT table_name, priority, count(*), min(changed_at) FROM sync_queue"
							" WHERE origin = ?1 AND seq > coalesce((SELECT CAST(value AS INTEGER)"
							"       FROM syncqd_state WHERE key = 'up_seq'), 0)"
							" GROUP BY 1, 2 ORDER BY 1, 2", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, c->node_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
	{
		const char *t = (const char *) sqlite3_column_text(st, 0);
		const char *pr = (const char *) sqlite3_column_text(st, 1);
		long		n = (long) sqlite3_column_int64(st, 2);
		json_t	   *tj = json_object_get(tables, t ? t : "");
		int64_t		sec;
		int32_t		usec;
		const char *at = (const char *) sqlite3_column_text(st, 3);

		if (tj == NULL)
		{
			tj = json_object();
			json_object_set_new(tj, SYNCQ_PRIORITY_IMMEDIATE, json_integer(0));
			json_object_set_new(tj, SYNCQ_PRIORITY_BATCHED, json_integer(0));
			json_object_set_new(tj, "total", json_integer(0));
			json_object_set_new(tables, t ? t : "", tj);
		}
		json_object_set_new(tj, pr && strcmp(pr, SYNCQ_PRIORITY_BATCHED) == 0 ? SYNCQ_PRIORITY_BATCHED : SYNCQ_PRIORITY_IMMEDIATE,
							json_integer(n));
		json_object_set_new(tj, "total", json_integer(json_integer_value(json_object_get(tj, "total")) + n));
		total += n;
		if (at && syncq_parse_instant(at, sqlite3_column_bytes(st, 3), &sec, &usec) == 0 &&
			(oldest == 0 || sec * 1000000 + usec < oldest))
			oldest = sec * 1000000 + usec;
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;
	json_object_set_new(q, "total", json_integer(total));
	json_object_set_new(q, "tables", tables);
	tables = NULL;
	json_object_set_new(q, "oldest_change_at", jinstant(oldest));
	if (oldest > 0 && now > oldest)
		*lag_s = (double) (now - oldest) / 1e6;

	/*
	 * (this node's changes the hub set aside, kept here while the hub holds
	 * them: client/errors.c, are the hub's errors.up already)
	 */
	rc = sqlite3_prepare_v2(c->db, "SELECT hub_seq, table_name, op, pk, error, first_failed, last_failed, attempts,"
							" count(*) OVER () FROM sync_errors WHERE NOT (hub_seq < 0 AND ver_us <> 0)"
							" ORDER BY id LIMIT ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int(st, 1, STATUS_ERRORS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
	{
		json_t	   *e = json_object();

		json_object_set_new(e, "hub_seq", json_integer(sqlite3_column_int64(st, 0)));
		json_object_set_new(e, "table", http_jtext((const char *) sqlite3_column_text(st, 1)));
		json_object_set_new(e, "op", http_jtext((const char *) sqlite3_column_text(st, 2)));
		json_object_set_new(e, "pk", detail ? http_jtext((const char *) sqlite3_column_text(st, 3)) : json_null());
		json_object_set_new(e, "error", jmessage((const char *) sqlite3_column_text(st, 4), detail));
		json_object_set_new(e, "first_failed", http_jtext((const char *) sqlite3_column_text(st, 5)));
		json_object_set_new(e, "last_failed", http_jtext((const char *) sqlite3_column_text(st, 6)));
		json_object_set_new(e, "attempts", json_integer(sqlite3_column_int(st, 7)));
		nerr = (long) sqlite3_column_int64(st, 8);
		json_array_append_new(list, e);
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;
	json_object_set_new(errs, "count", json_integer(nerr));
	json_object_set_new(errs, "changes", list);
	list = NULL;
	*down_errors = errs;
	errs = NULL;

	rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sync_conflicts", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto dberr;
	if (sqlite3_step(st) == SQLITE_ROW)
		*conflicts = (long) sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return q;
dberr:
	*why = sqlite3_errmsg(c->db);
	sqlite3_finalize(st);
fail:
	json_decref(q);
	json_decref(tables);
	json_decref(errs);
	json_decref(list);
	return NULL;
}

/*
 * The rows of this file the hub gave a new key (syncqd_key_renames,
 * client/keys.c): how many, and the last ten, so that a person can find a
 * record the app still shows under its old key.
 */
static json_t *
renamed_keys_json(Control *c)
{
	json_t	   *o = json_object(),
			   *list = json_array();
	sqlite3_stmt *st = NULL;
	int64_t		n = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT (SELECT count(*) FROM syncqd_key_renames), table_name, key_column,"
						   " old_key, new_key, renamed_at FROM syncqd_key_renames"
						   " ORDER BY seq DESC LIMIT 10", -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
		{
			json_t	   *e = json_object();

			n = sqlite3_column_int64(st, 0);
			json_object_set_new(e, "table", http_jtext((const char *) sqlite3_column_text(st, 1)));
			json_object_set_new(e, "column", http_jtext((const char *) sqlite3_column_text(st, 2)));
			json_object_set_new(e, "old_key", json_integer(sqlite3_column_int64(st, 3)));
			json_object_set_new(e, "new_key", json_integer(sqlite3_column_int64(st, 4)));
			json_object_set_new(e, "renamed_at", http_jtext((const char *) sqlite3_column_text(st, 5)));
			json_array_append_new(list, e);
		}
	sqlite3_finalize(st);
	json_object_set_new(o, "count", json_integer(n));
	json_object_set_new(o, "recent", list);
	return o;
}

static json_t *
stats_json(const SyncStats *st)
{
	json_t	   *o = json_object(),
			   *up = json_object(),
			   *down = json_object();

	json_object_set_new(up, "applied", json_integer(st->up_applied));
	json_object_set_new(up, "overruled", json_integer(st->up_conflicts));
	json_object_set_new(up, "already_there", json_integer(st->up_skipped));
	json_object_set_new(up, "set_aside", json_integer(st->up_parked));
	json_object_set_new(up, "retried_ok", json_integer(st->up_retried));
	json_object_set_new(up, "renamed", json_integer(st->renamed));
	json_object_set_new(down, "rows", json_integer(st->down_rows));
	json_object_set_new(down, "applied", json_integer(st->down_applied));
	json_object_set_new(down, "overruled", json_integer(st->down_conflicts));
	json_object_set_new(down, "set_aside", json_integer(st->down_parked));
	json_object_set_new(down, "retried_ok", json_integer(st->down_retried));
	json_object_set_new(down, "first_sync", json_boolean(st->first_sync));
	json_object_set_new(o, "up", up);
	json_object_set_new(o, "down", down);
	return o;
}

/* The last sync, as the loop published it (c->mu held). */
static json_t *
last_sync_json(Control *c, bool detail)
{
	json_t	   *l;

	if (!c->have_last)
		return json_null();
	l = stats_json(&c->last_st);
	json_object_set_new(l, "at", jinstant(c->last_at_us));
	json_object_set_new(l, "ok", json_boolean(c->last_ok));
	json_object_set_new(l, "seconds", jseconds(c->last_secs));
	if (!c->last_ok)
		json_object_set_new(l, "error", jmessage(c->last_error, detail));
	return l;
}

/* This client's changes the hub set aside, as last heard (c->mu held). */
static json_t *
hub_errors_json(Control *c, bool detail)
{
	json_t	   *o = json_object(),
			   *list = json_array();

	for (int i = 0; i < c->n_hub_errs; i++)
	{
		const HubError *he = &c->hub_errs[i];
		json_t	   *e = json_object();

		json_object_set_new(e, "seq", json_integer(he->seq));
		json_object_set_new(e, "table", http_jtext(he->table));
		json_object_set_new(e, "op", json_stringn(&he->op, 1));
		json_object_set_new(e, "pk", detail ? http_jtext(he->pk) : json_null());
		json_object_set_new(e, "error", jmessage(he->error, detail));
		json_object_set_new(e, "first_failed", http_jtext(he->first_failed));
		json_object_set_new(e, "last_failed", http_jtext(he->last_failed));
		json_object_set_new(e, "attempts", json_integer(he->attempts));
		json_array_append_new(list, e);
	}
	json_object_set_new(o, "count", c->hub_err_count >= 0 ? json_integer(c->hub_err_count) : json_null());
	json_object_set_new(o, "changes", list);
	return o;
}

/*
 * The whole status document (GET /api/sync/status). detail: with the row
 * values the errors carry (the keys of set-aside changes, the messages as
 * they are); without, the keys null and the messages' values left out.
 */
static json_t *
build_status(Control *c, bool detail)
{
	int64_t		now = now_us();
	json_t	   *o = json_object(),
			   *hub = json_object(),
			   *errors = json_object(),
			   *up_errs,
			   *confl = json_object(),
			   *queue,
			   *down_errs = NULL;
	const char *why = NULL;
	double		lag = 0;
	long		here = -1,		/* conflicts: hub changes overruled here */
				on_hub = -1,	/* this node's changes overruled on the hub */
				nerr = 0;

	queue = db_status(c, detail, now, &lag, &down_errs, &here, &why);
	json_object_set_new(o, "renamed_keys", renamed_keys_json(c));

	json_object_set_new(o, "role", json_string("client"));
	json_object_set_new(o, "version", json_string(SYNCQD_VERSION));
	json_object_set_new(o, "node_id", json_string(c->node_id));
	json_object_set_new(o, "database", http_jtext(c->db_path));
	json_object_set_new(o, "pid", json_integer(getpid()));
	json_object_set_new(o, "uptime_seconds", jseconds((double) (now - c->started_us) / 1e6));

	pthread_mutex_lock(&c->mu);
	json_object_set_new(o, "hub_node_id", c->hub_node_id[0] ? json_string(c->hub_node_id) : json_null());
	json_object_set_new(o, "state", json_string(state_name(c->state)));
	json_object_set_new(hub, "connected", json_boolean(c->hub_connected));
	if (c->state == STATE_RETRY_WAIT && c->retry_at_us > now)
		json_object_set_new(hub, "retry_in_seconds", jseconds((double) (c->retry_at_us - now) / 1e6));
	json_object_set_new(o, "hub", hub);
	json_object_set_new(o, "last_successful_sync", jinstant(c->last_success_us));
	json_object_set_new(o, "seconds_since_last_sync",
						c->last_success_us > 0 ? jseconds((double) (now - c->last_success_us) / 1e6) : json_null());
	if (c->next_periodic_us > 0)
		json_object_set_new(o, "next_batched_sync_in_seconds",
							jseconds(c->next_periodic_us > now ? (double) (c->next_periodic_us - now) / 1e6 : 0));
	json_object_set_new(o, "last_sync", last_sync_json(c, detail));
	if (c->clock_known)
	{
		json_t	   *k = json_object();
		char		text[64];

		sync_clock_text(c->clock_offset_us, text, sizeof(text));
		json_object_set_new(k, "offset_seconds", json_real(round((double) c->clock_offset_us / 1e3) / 1e3));
		json_object_set_new(k, "text", json_string(text));
		json_object_set_new(o, "clock", k);
	}
	else
		json_object_set_new(o, "clock", json_null());
	{
		json_t	   *n = json_object();

		json_object_set_new(n, "ok", json_integer(c->syncs_ok));
		json_object_set_new(n, "failed", json_integer(c->syncs_failed));
		json_object_set_new(o, "syncs", n);
	}
	up_errs = hub_errors_json(c, detail);
	if (c->hub_err_count > 0)
		nerr += c->hub_err_count;
	on_hub = c->hub_conflicts;
	pthread_mutex_unlock(&c->mu);

	if (queue)
	{
		json_t	   *depth = json_object();
		const char *k;
		json_t	   *v;

		json_object_foreach(json_object_get(queue, "tables"), k, v)
			json_object_set_new(depth, k, json_incref(json_object_get(v, "total")));
		json_object_set_new(o, "queue_depth", depth);
		json_object_set_new(o, "queue", queue);
		json_object_set_new(o, "lag_seconds", jseconds(lag));
		nerr += (long) json_integer_value(json_object_get(down_errs, "count"));
	}
	else
	{
		json_object_set_new(o, "queue_depth", json_null());
		json_object_set_new(o, "queue", json_null());
		json_object_set_new(o, "lag_seconds", json_null());
		json_object_set_new(o, "database_error", http_jtext(why));
		down_errs = json_null();
	}
	json_object_set_new(errors, "count", json_integer(nerr));
	json_object_set_new(errors, "up", up_errs);
	json_object_set_new(errors, "down", down_errs);
	json_object_set_new(o, "errors", errors);
	json_object_set_new(confl, "count", json_integer((here > 0 ? here : 0) + (on_hub > 0 ? on_hub : 0)));
	json_object_set_new(confl, "here", here >= 0 ? json_integer(here) : json_null());
	json_object_set_new(confl, "on_hub", on_hub >= 0 ? json_integer(on_hub) : json_null());
	json_object_set_new(o, "conflicts", confl);
	json_object_set_new(o, "timezone", tz_status(c, now));
	return o;
}

/* ---- whom it answers ------------------------------------------------------ */

/* Is name[0..n) (a host without its port) one of the loopback names? */
static bool
loopback_name(const char *name, size_t n)
{
	static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (n == strlen(names[i]) && strncasecmp(name, names[i], n) == 0)
			return true;
	return false;
}

/*
 * Does "host[:port]" name this control API: a loopback name or the host it
 * was told to listen on, and its port? (A DNS rebinding page names its own
 * host.)
 */
static bool
host_allowed(const Control *c, const char *hostport)
{
	const char *colon = strrchr(hostport, ':'),
			   *bracket = strrchr(hostport, ']');
	size_t		n = strlen(hostport);

	if (colon && (bracket == NULL || colon > bracket))
	{
		char	   *end;
		long		p = strtol(colon + 1, &end, 10);

		if (*end || end == colon + 1 || p != (long) c->http.port)
			return false;
		n = (size_t) (colon - hostport);
	}
	if (n == 0)
		return false;
	return loopback_name(hostport, n) ||
		(c->host[0] && strlen(c->host) == n && strncasecmp(hostport, c->host, n) == 0);
}

/* Is origin (scheme://host[:port]) this API's own, or one the app gave? */
static bool
origin_allowed(HttpServer *srv, const char *origin)
{
	const Control *c = srv->cls;

	for (int i = 0; i < c->norigins; i++)
		if (strcasecmp(origin, c->origins[i]) == 0)
			return true;
	return strncasecmp(origin, "http://", 7) == 0 && strchr(origin + 7, '/') == NULL &&
		host_allowed(c, origin + 7);
}

/*
 * May this request be answered (its headers are in)? Its Host must name
 * this API, and a browser's Origin, when there is one, must be allowed
 * (origin_allowed): then the status carries row values. Without an Origin
 * it carries them only when the browser says the person asked for the page
 * itself (Sec-Fetch-Site: none) or this API's own page did. 403 otherwise,
 * logged.
 */
static enum MHD_Result
check_caller(HttpServer *srv, struct MHD_Connection *conn, HttpRequest *req)
{
	Control    *c = srv->cls;
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
			   *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN),
			   *why = NULL;

	if (host == NULL || !host_allowed(c, host))
		why = "the Host header does not name this control API (a loopback name and its port)";
	else if (origin != NULL && !origin_allowed(srv, origin))
		why = "a page of this origin may not use the control API (syncqd --allow-origin)";
	if (why)
	{
		logmsg(LOG_WARNING, "control API: a request refused: %s (Host \"%.100s\", Origin \"%.100s\")",
			   why, host ? host : "", origin ? origin : "");
		return http_reply_error(srv, conn, MHD_HTTP_FORBIDDEN, NULL, NULL, "%s", why);
	}
	if (origin)
		req->detail = true;
	else
	{
		const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");

		req->detail = site && (strcmp(site, "none") == 0 || strcmp(site, "same-origin") == 0);
	}
	return MHD_YES;
}

/* ---- HTTP ----------------------------------------------------------------- */

/* POST /api/sync/trigger: ask the loop for a sync, at most once per gap. */
static enum MHD_Result
do_trigger(Control *c, struct MHD_Connection *conn, const HttpRequest *req)
{
	uint64_t	one = 1;
	int64_t		wait_s;
	json_t	   *o;

	/* no body, or a JSON object (a reason, say); anything else is a mistake */
	if (req->body.len > 0)
	{
		json_error_t jerr;
		json_t	   *b = json_loadb(req->body.p, req->body.len, 0, &jerr);
		bool		ok = b && json_is_object(b);

		json_decref(b);
		if (!ok)
			return http_reply_error(&c->http, conn, MHD_HTTP_BAD_REQUEST, NULL, NULL,
									"the body must be empty or a JSON object");
	}
	if ((wait_s = http_rate_take(&c->trigger)) > 0)
		return http_reply_too_soon(&c->http, conn, wait_s);
	if (write(c->efd, &one, sizeof(one)) != (ssize_t) sizeof(one))
		return http_reply_error(&c->http, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL,
								"could not wake the sync loop: %s", strerror(errno));
	logmsg(LOG_INFO, "sync requested over the control API");
	o = json_object();
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "message", json_string("sync requested"));
	return http_reply_json(&c->http, conn, MHD_HTTP_ACCEPTED, o, NULL, NULL);
}

/* Every request, its body all in (http.c): route it. */
static enum MHD_Result
handle(HttpServer *srv, struct MHD_Connection *conn, HttpRequest *req, const char *url,
	   const char *method)
{
	Control    *c = srv->cls;
	bool		get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool		post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	if (strcmp(url, "/api/sync/status") == 0)
	{
		if (!get)
			return http_reply_method(srv, conn, method, url, "GET, HEAD");
		return http_reply_json(srv, conn, MHD_HTTP_OK, build_status(c, req->detail), NULL, NULL);
	}
	if (strcmp(url, "/") == 0)
	{
		json_t	   *st;
		char	   *html;

		if (!get)
			return http_reply_method(srv, conn, method, url, "GET, HEAD");
		st = build_status(c, req->detail);
		html = status_page_html(st);
		json_decref(st);
		return http_reply(srv, conn, MHD_HTTP_OK, "text/html; charset=utf-8", "no-store",
						  html, strlen(html), NULL, NULL);
	}
	if (strcmp(url, "/auto_sync.js") == 0)
	{
		if (!get)
			return http_reply_method(srv, conn, method, url, "GET, HEAD");
		return http_reply_static(srv, conn, MHD_HTTP_OK, "text/javascript; charset=utf-8",
								 "max-age=300", auto_sync_js, auto_sync_js_len);
	}
	if (strcmp(url, "/api/sync/trigger") == 0)
	{
		if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
			return http_reply_preflight(srv, conn);
		if (!post)
			return http_reply_method(srv, conn, method, url, "POST, OPTIONS");
		if (req->too_big)
			return http_reply_error(srv, conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
									"the body is larger than %d bytes", BODY_MAX);
		return do_trigger(c, conn, req);
	}
	return http_reply_error(srv, conn, MHD_HTTP_NOT_FOUND, NULL, NULL,
							"no such resource; try GET / (the status page), GET /api/sync/status or POST /api/sync/trigger");
}

/* ---- start, stop ---------------------------------------------------------- */

/* --control: HOST:PORT, e.g. 127.0.0.1:8765 (or off, which is not this). */
int
control_check_address(const char *hostport, char *err, size_t errlen)
{
	char		host[256],
				port[16],
				why[128];

	if (http_hostport_parse(hostport, host, sizeof(host), port, sizeof(port), why, sizeof(why)) < 0)
	{
		snprintf(err, errlen, "invalid --control \"%s\": %s, e.g. " CONTROL_DEFAULT ", or off", hostport, why);
		return -1;
	}
	return 0;
}

/*
 * Is origin what a browser sends as Origin: scheme://host[:port], http or
 * https, no path, no credentials? -1 with err (for --allow-origin).
 */
int
control_check_origin(const char *origin, char *err, size_t errlen)
{
	const char *host = strstr(origin, "://");
	size_t		n = strlen(origin);

	if (n > CONTROL_ORIGIN_MAX || host == NULL ||
		!((host - origin == 4 && strncasecmp(origin, "http", 4) == 0) ||
		  (host - origin == 5 && strncasecmp(origin, "https", 5) == 0)) ||
		host[3] == '\0' || strpbrk(host + 3, "/?#@ \t") != NULL)
	{
		snprintf(err, errlen, "invalid --allow-origin \"%.300s\": give an origin as a browser sends it, e.g. https://app.example.org or http://127.0.0.1:5000 (no path)",
				 origin);
		return -1;
	}
	return 0;
}

/*
 * Start the control API on hostport, serving the status of db_path to the
 * pages of origins[0..norigins) (and its own). NULL with err if the
 * address cannot be had (a second syncqd on the same port, say).
 */
Control *
control_start(const char *hostport, const char *db_path, const char *node_id,
			  const char *const *origins, int norigins, char *err, size_t errlen)
{
	Control    *c = xcalloc(1, sizeof(Control));
	char		e[512];
	char		host[256],
				port[16];

	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->trigger.mu, NULL);
	c->efd = -1;
	c->db_path = xstrdup(db_path);
	snprintf(c->node_id, sizeof(c->node_id), "%s", node_id);
	c->started_us = now_us();
	c->hub_err_count = -1;
	c->hub_conflicts = -1;
	if (syncq_tz_load("America/New_York", &c->tz) != 0)
		c->tz = NULL;
	if (sqlite3_open_v2(db_path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
	{
		snprintf(err, errlen, "control API: cannot open \"%s\": %s", db_path, sqlite3_errmsg(c->db));
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 250);
	sqlite3_exec(c->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0)
	{
		snprintf(err, errlen, "control API: eventfd: %s", strerror(errno));
		goto fail;
	}
	c->http = (HttpServer) {
		.name = "control API",
		.handler = handle,
		.cls = c,
		.max_body = BODY_MAX,
		.on_headers = check_caller,
		.cors = origin_allowed,
		.conn_limit = 64,
		.per_ip_limit = 16,
		.timeout_s = 10,
		.conn_memory = 65536,
	};
	if (http_hostport_parse(hostport, host, sizeof(host), port, sizeof(port), e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "control API: invalid address \"%s\": %s", hostport, e);
		goto fail;
	}
	snprintf(c->host, sizeof(c->host), strchr(host, ':') ? "[%s]" : "%s", host);
	c->origins = xcalloc((size_t) norigins + 1, sizeof(char *));
	for (int i = 0; i < norigins; i++)
		c->origins[c->norigins++] = xstrdup(origins[i]);
	if (http_start(&c->http, hostport, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "control API: %s (is another syncqd using it? give --control HOST:PORT, or --control off)", e);
		goto fail;
	}
	logmsg(LOG_INFO, "control API on http://%.*s:%u/api/sync/status%s%s",
		   (int) (strrchr(hostport, ':') - hostport), hostport, c->http.port,
		   c->norigins ? ", for pages of " : "", c->norigins ? c->origins[0] : "");
	for (int i = 1; i < c->norigins; i++)
		logmsg(LOG_INFO, "control API: also for pages of %s", c->origins[i]);
	return c;
fail:
	control_stop(c);
	return NULL;
}

void
control_stop(Control *c)
{
	if (c == NULL)
		return;
	http_stop(&c->http);
	if (c->efd >= 0)
		close(c->efd);
	sqlite3_close(c->db);
	syncq_tz_free(c->tz);
	hub_errors_free(c->hub_errs, c->n_hub_errs);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->trigger.mu);
	for (int i = 0; i < c->norigins; i++)
		free(c->origins[i]);
	free(c->origins);
	free(c->db_path);
	free(c);
}

int
control_wake_fd(const Control *c)
{
	return c ? c->efd : -1;
}

/* Did the control API ask for a sync since the last look? */
bool
control_take_trigger(Control *c)
{
	uint64_t	n = 0;

	if (c == NULL)
		return false;
	return read(c->efd, &n, sizeof(n)) == (ssize_t) sizeof(n) && n > 0;
}

/* ---- what the loop publishes ---------------------------------------------- */

void
control_set_state(Control *c, DaemonState s, int64_t retry_at_us)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->state = s;
	c->retry_at_us = retry_at_us;
	pthread_mutex_unlock(&c->mu);
}

void
control_set_hub(Control *c, const char *hub_node_id, bool connected)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	if (hub_node_id)
		snprintf(c->hub_node_id, sizeof(c->hub_node_id), "%s", hub_node_id);
	c->hub_connected = connected;
	pthread_mutex_unlock(&c->mu);
}

void
control_set_next_periodic(Control *c, int64_t at_us)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->next_periodic_us = at_us;
	pthread_mutex_unlock(&c->mu);
}

void
control_sync_done(Control *c, bool ok, const SyncStats *st, double secs, const char *error)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->have_last = true;
	c->last_ok = ok;
	c->last_at_us = now_us();
	c->last_secs = secs;
	c->last_st = *st;
	if (st->clock_known)
	{
		c->clock_known = true;
		c->clock_offset_us = st->clock_offset_us;
	}
	snprintf(c->last_error, sizeof(c->last_error), "%s", ok ? "" : error);
	if (ok)
	{
		c->last_success_us = c->last_at_us;
		c->syncs_ok++;
	}
	else
		c->syncs_failed++;
	pthread_mutex_unlock(&c->mu);
}

/* The hub's sync_errors for this client (takes rows), its conflicts. */
void
control_set_hub_errors(Control *c, long count, HubError *rows, int nrows, long conflicts)
{
	HubError   *old;
	int			nold;

	if (c == NULL)
	{
		hub_errors_free(rows, nrows);
		return;
	}
	pthread_mutex_lock(&c->mu);
	old = c->hub_errs;
	nold = c->n_hub_errs;
	c->hub_err_count = count;
	c->hub_errs = rows;
	c->n_hub_errs = nrows;
	if (conflicts >= 0)
		c->hub_conflicts = conflicts;
	pthread_mutex_unlock(&c->mu);
	hub_errors_free(old, nold);
}
