/*
 * serve_status.c — what `syncqd serve` says of the hub, and its trigger.
 *
 *   serve_status    GET /api/sync/status (JSON) and GET / (the page): the
 *                   hub's queue, clients, set-aside changes, conflicts,
 *                   time zone, and serve's own counters
 *   serve_trigger   POST /api/sync/trigger: sync_trigger() on the hub, so
 *                   that every listening client syncs
 */
#include "base/base.h"
#include "http/serve_state.h"
#include "http/statuspage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *
result_rows(PGresult *res)
{
	json_t	   *arr = json_array();

	for (int r = 0; res && r < PQntuples(res); r++)
	{
		json_t	   *o = json_object();

		for (int c = 0; c < PQnfields(res); c++)
		{
			json_t	   *v;

			if (PQgetisnull(res, r, c))
				v = json_null();
			else if (PQftype(res, c) == 20 || PQftype(res, c) == 23)	/* int8, int4 */
				v = json_integer(strtoll(PQgetvalue(res, r, c), NULL, 10));
			else if (PQftype(res, c) == 701)	/* float8 */
				v = json_real(strtod(PQgetvalue(res, r, c), NULL));
			else
				v = http_jtext(PQgetvalue(res, r, c));
			json_object_set_new(o, PQfname(res, c), v);
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *
hub_status(Serve *s)
{
	json_t	   *o = json_object(),
			   *depth = json_object(),
			   *errors = json_object(),
			   *confl = json_object(),
			   *req = json_object();
	char		err[1024];
	Hub		   *h = pool_get(&s->pool, err, sizeof(err));
	PGresult   *res;

	json_object_set_new(o, "role", json_string("hub"));
	json_object_set_new(o, "version", json_string(SYNCQD_VERSION));
	json_object_set_new(o, "pid", json_integer(getpid()));
	json_object_set_new(o, "uptime_seconds", json_real((double) (now_us() - s->started_us) / 1e6));
	pthread_mutex_lock(&s->count_mu);
	json_object_set_new(req, "served", json_integer(s->served));
	json_object_set_new(req, "failed", json_integer(s->failed));
	json_object_set_new(req, "uploads_overtaken", json_integer(s->overtaken));
	pthread_mutex_unlock(&s->count_mu);
	json_object_set_new(o, "requests", req);
	if (h == NULL)
	{
		json_object_set_new(o, "node_id", json_null());
		json_object_set_new(o, "database_error", http_jtext(err));
		json_decref(depth);
		json_decref(errors);
		json_decref(confl);
		return o;
	}
	json_object_set_new(o, "node_id", json_string(h->node_id));
	json_object_set_new(o, "database", http_jtext(PQdb(h->conn)));
	res = hub_run(h, "SELECT t.table_name, count(q.seq)::int8 FROM sync_tables t"
				  " LEFT JOIN sync_queue q ON q.table_name = t.table_name"
				  " GROUP BY 1 ORDER BY 1", 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	for (int r = 0; res && r < PQntuples(res); r++)
		json_object_set_new(depth, PQgetvalue(res, r, 0), json_integer(strtoll(PQgetvalue(res, r, 1), NULL, 10)));
	PQclear(res);
	json_object_set_new(o, "queue_depth", depth);
	res = hub_run(h, "SELECT node_id::text, to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_seen,"
				  " round(extract(epoch FROM now() - last_seen)::numeric, 3)::float8 AS lag_seconds"
				  " FROM sync_clients ORDER BY last_seen DESC LIMIT 50", 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	json_object_set_new(o, "clients", result_rows(res));
	PQclear(res);
	res = hub_run(h, "SELECT (SELECT count(*) FROM sync_errors)::int8 AS count", 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	json_object_set_new(errors, "count", res ? json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)) : json_null());
	PQclear(res);
	res = hub_run(h, "SELECT seq, node_id::text, table_name AS table, op, pk::text, error,"
				  " to_char(last_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_failed, attempts::int8"
				  " FROM sync_errors ORDER BY last_failed DESC LIMIT 20", 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	json_object_set_new(errors, "changes", result_rows(res));
	PQclear(res);
	json_object_set_new(o, "errors", errors);
	res = hub_run(h, "SELECT (SELECT count(*) FROM sync_conflicts)::int8", 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	json_object_set_new(confl, "count", res ? json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)) : json_null());
	PQclear(res);
	res = hub_run(h, "SELECT table_name AS table, pk::text, winner_origin::text, loser_origin::text,"
				  " to_char(detected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS at"
				  " FROM sync_conflicts ORDER BY id DESC LIMIT 10", 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	json_object_set_new(confl, "recent", result_rows(res));
	PQclear(res);
	json_object_set_new(o, "conflicts", confl);
	res = hub_run(h, "SELECT 'America/New_York' AS zone,"
				  " to_char(now() AT TIME ZONE 'America/New_York' - now() AT TIME ZONE 'UTC', 'HH24:MI') AS off,"
				  " extract(epoch FROM now() AT TIME ZONE 'America/New_York' - now() AT TIME ZONE 'UTC')::int8 AS utc_offset_seconds,"
				  " eastern_date(now())::text AS eastern_date,"
				  " to_char(now() AT TIME ZONE 'America/New_York', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS now",
				  0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
	if (res && PQntuples(res) == 1)
	{
		json_t	   *tz = json_object();
		long		off = strtol(PQgetvalue(res, 0, 2), NULL, 10) % 86400;
		char		offs[48];

		snprintf(offs, sizeof(offs), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600, labs(off) % 3600 / 60);
		json_object_set_new(tz, "zone", json_string("America/New_York"));
		json_object_set_new(tz, "utc_offset", json_string(offs));
		json_object_set_new(tz, "utc_offset_seconds", json_integer(off));
		json_object_set_new(tz, "eastern_date", http_jtext(PQgetvalue(res, 0, 3)));
		json_object_set_new(tz, "now", http_jtext(PQgetvalue(res, 0, 4)));
		json_object_set_new(o, "timezone", tz);
	}
	PQclear(res);
	pool_put(&s->pool, h);
	return o;
}

/* POST /api/sync/trigger on serve: every listening client syncs. */
enum MHD_Result
serve_trigger(Serve *s, struct MHD_Connection *conn)
{
	char		err[1024];
	int64_t		wait_s = http_rate_take(&s->trigger);
	Hub		   *h;
	json_t	   *o;

	if (wait_s > 0)
	{
		serve_count(s, MHD_HTTP_TOO_MANY_REQUESTS);
		return http_reply_too_soon(&s->http, conn, wait_s);
	}
	h = pool_get(&s->pool, err, sizeof(err));
	if (h == NULL || hub_exec(h, "SELECT sync_trigger()", err, sizeof(err)) < 0)
	{
		enum MHD_Result ret = serve_hub_error(s, conn, h, "sync_trigger()", err);

		if (h)
			pool_put(&s->pool, h);
		return ret;
	}
	pool_put(&s->pool, h);
	serve_count(s, MHD_HTTP_ACCEPTED);
	o = json_object();
	json_object_set_new(o, "message", json_string("sync requested of every listening client"));
	return http_reply_json(&s->http, conn, MHD_HTTP_ACCEPTED, o, NULL, NULL);
}

enum MHD_Result
serve_status(Serve *s, struct MHD_Connection *conn, bool page)
{
	json_t	   *st = hub_status(s);
	char	   *html;

	serve_count(s, MHD_HTTP_OK);
	if (!page)
		return http_reply_json(&s->http, conn, MHD_HTTP_OK, st, NULL, NULL);
	html = status_page_html(st);
	json_decref(st);
	return http_reply(&s->http, conn, MHD_HTTP_OK, "text/html; charset=utf-8", NULL, html,
					  strlen(html), NULL, NULL);
}
