/*
 * serve.c — `syncqd serve`: the hub's side of the sync exchange over
 * HTTP(S), in front of PostgreSQL (docs/http.md).
 *
 *   syncqd serve --postgres CONNINFO --listen HOST:PORT [--tls-cert F --tls-key F]
 *                [--credentials FILE] [--max-body BYTES] [--pool N]
 *
 * Each POST /api/sync/data is one step of a sync (proto.h): decoded and
 * checked first (proto.c), then run against the hub with the same code the
 * libpq path runs (hub/) on a connection from a small pool.
 * serve keeps nothing of its own beyond PostgreSQL, so several can run
 * behind a load balancer. GET /api/sync/wait is a long poll that answers
 * when the hub NOTIFYs (an immediate change, sync_trigger()), so clients
 * over HTTP hear of the hub's changes as soon as libpq clients do.
 *
 * One thread per connection (libmicrohttpd); a request holds a hub
 * connection only while it runs against the hub.
 */
#include "base/base.h"
#include "base/buf.h"
#include "http/auth.h"
#include "http/control.h"
#include "http/http.h"
#include "http/serve.h"
#include "http/statuspage.h"
#include "hub/hub.h"
#include "link/proto.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_BODY_DEFAULT (64L * 1024 * 1024)
#define POOL_DEFAULT 8
#define POOL_WAIT_S 30			/* a request waits this long for a connection */
#define WAIT_MAX_S 25			/* a long poll answers after this at the latest */
#define GZIP_MIN 1024			/* replies shorter than this go plain */
#define TRIGGER_GAP_S 5
#define UPLOAD_PAGE 5000		/* changes handed to hub_upload_chunk at a time */
#define UPLOAD_SLOTS 2
#define BIND_CACHE_MAX 10000	/* node bindings remembered, at most */
#define AUTH_SLOTS 4			/* password checks at once */			/* uploads holding a hub connection at once */

typedef struct
{
	char	   *conninfo;
	Hub		  **idle;
	int			nidle;
	int			open;
	int			max;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} Pool;

/*
 * The hub's wake-ups, counted by the listener thread. The node that caused
 * each of the last WAKE_RING change wake-ups is kept ("" if not an upload),
 * so that a long poll does not wake a client for its own upload.
 */
#define WAKE_RING 64
typedef struct
{
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t		changes;
	int64_t		requests;
	char		origin[WAKE_RING][NODE_ID_LEN + 1];
	bool		stop;
} Wakes;

typedef struct
{
	Pool		pool;
	Wakes		wakes;
	Auth	   *auth;
	long		max_body;
	char		serve_id[17];	/* this process: long-poll counters are its own */
	int64_t		started_us;
	/* node ids confirmed bound to a user: (node, user) */
	pthread_mutex_t bind_mu;
	char	  **bind_node;
	char	  **bind_user;
	int			nbind;
	/*
	 * Uploads wait here for one of UPLOAD_SLOTS before they take a hub
	 * connection: they take turns on the hub's apply lock anyway, and must
	 * not hold every pooled connection while they wait for it.
	 */
	pthread_mutex_t up_mu;
	pthread_cond_t up_cv;
	int			up_busy;
	/* password checks running at once (AUTH_SLOTS at most) */
	pthread_mutex_t auth_mu;
	pthread_cond_t auth_cv;
	int			auth_busy;
	/* counters for the status */
	pthread_mutex_t count_mu;
	int64_t		served;
	int64_t		failed;
	int64_t		overtaken;		/* uploads rolled back and sent again */
	int64_t		last_trigger_us;
} Serve;

typedef struct
{
	Buf			body;
	bool		too_big;
	bool		authed;
	bool		admin;
	char		user[128];
} Request;

/* ---- the connection pool ------------------------------------------------- */

static Hub *
pool_get(Pool *p, char *err, size_t errlen)
{
	struct timespec until;
	Hub		   *h = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += POOL_WAIT_S;
	pthread_mutex_lock(&p->mu);
	while (p->nidle == 0 && p->open >= p->max)
	{
		if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
		{
			pthread_mutex_unlock(&p->mu);
			snprintf(err, errlen, "all %d hub connections stayed busy for %d s", p->max, POOL_WAIT_S);
			return NULL;
		}
	}
	if (p->nidle > 0)
		h = p->idle[--p->nidle];
	else
		p->open++;
	pthread_mutex_unlock(&p->mu);
	if (h && !hub_ok(h))
	{
		hub_close(h);
		h = NULL;
	}
	if (h == NULL)
	{
		h = hub_connect(p->conninfo, false, err, errlen);
		if (h == NULL)
		{
			pthread_mutex_lock(&p->mu);
			p->open--;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
		}
	}
	return h;
}

static void
pool_put(Pool *p, Hub *h)
{
	if (h && PQstatus(h->conn) == CONNECTION_OK && PQtransactionStatus(h->conn) != PQTRANS_IDLE)
		hub_rollback(h);
	pthread_mutex_lock(&p->mu);
	if (h && hub_ok(h))
		p->idle[p->nidle++] = h;
	else
	{
		hub_close(h);
		p->open--;
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void
pool_close(Pool *p)
{
	for (int i = 0; i < p->nidle; i++)
		hub_close(p->idle[i]);
	free(p->idle);
	p->nidle = 0;
}

/* ---- the hub's wake-ups ---------------------------------------------------- */

/* One wake-up of the hub (hub_consume): count it, keep who caused it. */
static void
on_hub_wake(void *arg, HubWake wake, const char *origin)
{
	Serve	   *s = arg;

	pthread_mutex_lock(&s->wakes.mu);
	if (wake == HUB_WAKE_REQUEST)
		s->wakes.requests++;
	else
		snprintf(s->wakes.origin[++s->wakes.changes % WAKE_RING], NODE_ID_LEN + 1, "%s", origin);
	pthread_cond_broadcast(&s->wakes.cv);
	pthread_mutex_unlock(&s->wakes.mu);
}

static void *
listener_main(void *arg)
{
	Serve	   *s = arg;
	Hub		   *h = NULL;
	double		backoff = 0.5;
	bool		lost = false;

	for (;;)
	{
		char		err[1024];

		pthread_mutex_lock(&s->wakes.mu);
		if (s->wakes.stop)
		{
			pthread_mutex_unlock(&s->wakes.mu);
			break;
		}
		pthread_mutex_unlock(&s->wakes.mu);
		if (h == NULL)
		{
			h = hub_connect(s->pool.conninfo, true, err, sizeof(err));
			if (h == NULL)
			{
				struct timespec ts = {(time_t) backoff, (long) ((backoff - (int) backoff) * 1e9)};

				logmsg(LOG_WARNING, "listening for the hub's wake-ups: %s", err);
				nanosleep(&ts, NULL);
				backoff = backoff * 2 > 30 ? 30 : backoff * 2;
				continue;
			}
			backoff = 0.5;
			if (lost)
			{
				/* what happened while we were not listening: wake everyone */
				pthread_mutex_lock(&s->wakes.mu);
				s->wakes.origin[++s->wakes.changes % WAKE_RING][0] = '\0';
				pthread_cond_broadcast(&s->wakes.cv);
				pthread_mutex_unlock(&s->wakes.mu);
			}
			lost = true;
		}
		else
		{
			struct pollfd pfd = {hub_socket(h), POLLIN, 0};

			if (poll(&pfd, 1, 500) > 0 && hub_consume(h, on_hub_wake, s, err, sizeof(err)) < 0)
			{
				logmsg(LOG_WARNING, "listening for the hub's wake-ups: %s", err);
				hub_close(h);
				h = NULL;
			}
		}
	}
	hub_close(h);
	return NULL;
}

/* ---- replies --------------------------------------------------------------- */

static bool
accepts_gzip(struct MHD_Connection *conn)
{
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);

	return ae && strstr(ae, "gzip") != NULL;
}

/* gzip data into *out (malloc'd); false if zlib fails. */
static bool
gzip_bytes(const char *data, size_t len, char **out, size_t *outlen)
{
	z_stream	z = {0};
	uLong		cap;
	char	   *buf;

	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return false;
	cap = deflateBound(&z, (uLong) len) + 32;
	buf = xmalloc(cap);
	z.next_in = (Bytef *) data;
	z.avail_in = (uInt) len;
	z.next_out = (Bytef *) buf;
	z.avail_out = (uInt) cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
	{
		deflateEnd(&z);
		free(buf);
		return false;
	}
	*outlen = z.total_out;
	*out = buf;
	deflateEnd(&z);
	return true;
}

/* Queue a reply of bytes (takes data, malloc'd). */
static enum MHD_Result
reply_bytes(struct MHD_Connection *conn, unsigned int code, const char *ctype, char *data,
			size_t len, const char *hname, const char *hvalue)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool		gz = false;

	if (len >= GZIP_MIN && accepts_gzip(conn))
	{
		char	   *z;
		size_t		zlen;

		if (gzip_bytes(data, len, &z, &zlen))
		{
			free(data);
			data = z;
			len = zlen;
			gz = true;
		}
	}
	r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (r == NULL)
	{
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (gz)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	if (hname)
		MHD_add_response_header(r, hname, hvalue);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_buf(struct MHD_Connection *conn, unsigned int code, Buf *b)
{
	buf_putc(b, '\n');
	return reply_bytes(conn, code, "application/json", b->p, b->len, NULL, NULL);
}

static enum MHD_Result
reply_json(struct MHD_Connection *conn, unsigned int code, json_t *o, const char *hname, const char *hvalue)
{
	char	   *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));

	json_decref(o);
	if (text == NULL)
		return MHD_NO;
	return reply_bytes(conn, code, "application/json", text, strlen(text), hname, hvalue);
}

static void
count_reply(Serve *s, unsigned int code)
{
	pthread_mutex_lock(&s->count_mu);
	if (code < 400)
		s->served++;
	else
		s->failed++;
	pthread_mutex_unlock(&s->count_mu);
}

static enum MHD_Result
reply_error(Serve *s, struct MHD_Connection *conn, unsigned int code, const char *hname,
			const char *hvalue, const char *fmt,...) __attribute__((format(printf, 6, 7)));

static enum MHD_Result
reply_error(Serve *s, struct MHD_Connection *conn, unsigned int code, const char *hname,
			const char *hvalue, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;
	json_t	   *o = json_object();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	count_reply(s, code);
	json_object_set_new(o, "error", json_stringn_nocheck(msg, strlen(msg)));
	json_object_set_new(o, "status", json_integer(code));
	return reply_json(conn, code, o, hname, hvalue);
}

/* A hub failure: 503 if the hub is unreachable, else 500, with the reason. */
static enum MHD_Result
reply_hub_error(Serve *s, struct MHD_Connection *conn, const Hub *h, const char *what, const char *err)
{
	bool		down = h == NULL || PQstatus(h->conn) != CONNECTION_OK ||
		strncmp(h->sqlstate, "08", 2) == 0 || strncmp(h->sqlstate, "57", 2) == 0;

	logmsg(LOG_WARNING, "%s: %s", what, err);
	return reply_error(s, conn, down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
					   down ? MHD_HTTP_HEADER_RETRY_AFTER : NULL, down ? "5" : NULL, "%s: %s", what, err);
}

/* ---- the steps of a sync ------------------------------------------------------ */

static void
put_key(Buf *b, const char *key, bool first)
{
	if (!first)
		buf_putc(b, ',');
	buf_json_string(b, key, strlen(key));
	buf_putc(b, ':');
}

static void
put_str(Buf *b, const char *key, const char *val, bool first)
{
	put_key(b, key, first);
	if (val)
		buf_json_string(b, val, strlen(val));
	else
		buf_puts(b, "null");
}

static void
put_int(Buf *b, const char *key, int64_t v, bool first)
{
	put_key(b, key, first);
	buf_printf(b, "%" PRId64, v);
}

static int
do_hello(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	UploadStats us = {0};

	if (hub_load_tables(h, err, errlen) < 0)
		return -1;
	if (rq->retry_errors)
	{
		char		e[1024];

		if (hub_retry_errors(h, rq->node_id, &us, e, sizeof(e)) < 0)
			logmsg(LOG_WARNING, "node %s: retrying set-aside changes failed: %s", rq->node_id, e);
		if (!hub_ok(h))
			hub_rollback(h);
	}
	buf_putc(out, '{');
	put_int(out, "v", PROTO_VERSION, true);
	put_str(out, "hub_node_id", h->node_id, false);
	put_key(out, "tables", false);
	buf_putc(out, '[');
	for (int i = 0; i < h->ntables; i++)
	{
		const HubTable *t = &h->tables[i];

		buf_puts(out, i ? ",{" : "{");
		put_str(out, "name", t->name, true);
		put_key(out, "columns", false);
		buf_putc(out, '[');
		for (int c = 0; c < t->ncols; c++)
		{
			buf_puts(out, c ? ",{" : "{");
			put_str(out, "name", t->cols[c], true);
			put_str(out, "type", t->types[c], false);
			put_int(out, "pk", t->pk_pos[c], false);
			buf_putc(out, '}');
		}
		buf_puts(out, "]}");
	}
	buf_putc(out, ']');
	put_key(out, "retried", false);
	buf_putc(out, '{');
	put_int(out, "retried", us.retried, true);
	put_int(out, "conflicts", us.conflicts, false);
	buf_puts(out, "}}");
	return 0;
}

/* 409 for a cloned node, else the usual. */
static int
do_upload(Hub *h, ProtoRequest *rq, Buf *out, bool *clone, char *err, size_t errlen)
{
	UploadStats us = {0};

	*clone = false;
	if (hub_load_tables(h, err, errlen) < 0)
		return -1;
	if (hub_upload_begin(h, rq->node_id, rq->ack_seq, rq->ack_digest, err, errlen) < 0)
	{
		*clone = h->up.stats.clone;
		return -1;
	}
	/* in pages, as the libpq client sends them */
	for (int i = 0; i < rq->changes.n; i += UPLOAD_PAGE)
	{
		ChangeList	page = {.c = rq->changes.c + i, .n = rq->changes.n - i};

		if (page.n > UPLOAD_PAGE)
			page.n = UPLOAD_PAGE;
		if (hub_upload_chunk(h, &page, err, errlen) < 0)
		{
			*clone = h->up.stats.clone;
			return -1;
		}
	}
	if (hub_upload_end(h, &us, err, errlen) < 0)
	{
		*clone = us.clone;
		return -1;
	}
	buf_putc(out, '{');
	put_int(out, "applied", us.applied, true);
	put_int(out, "conflicts", us.conflicts, false);
	put_int(out, "skipped", us.skipped, false);
	put_int(out, "parked", us.parked, false);
	put_key(out, "marks", false);
	buf_putc(out, '[');
	for (int i = 0; i < h->up.nmarks; i++)
		buf_printf(out, "%s[%" PRId64 ",\"%" PRIx64 "\"]", i ? "," : "",
				   h->up.marks[i].seq, h->up.marks[i].digest);
	buf_puts(out, "],\"refused\":[");
	for (int i = 0; i < h->up.nnotes; i++)
	{
		if (i)
			buf_putc(out, ',');
		buf_json_string(out, h->up.notes[i], strlen(h->up.notes[i]));
	}
	buf_printf(out, "],\"refused_more\":%d}", h->up.notes_more);
	return 0;
}

static int
do_snapshot(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	char	   *snap;
	bool		behind;

	if (hub_download_begin(h, rq->position, &snap, &behind, err, errlen) < 0)
		return -1;
	hub_rollback(h);
	buf_putc(out, '{');
	put_str(out, "snapshot", snap, true);
	put_key(out, "behind", false);
	buf_puts(out, behind ? "true}" : "false}");
	free(snap);
	return 0;
}

static void
put_change(Buf *out, PGresult *res, int r, bool first)
{
	if (!first)
		buf_putc(out, ',');
	buf_putc(out, '{');
	put_key(out, "seq", true);
	buf_puts(out, PQgetvalue(res, r, 0));
	put_str(out, "table", PQgetvalue(res, r, 1), false);
	put_str(out, "op", PQgetvalue(res, r, 2), false);
	put_str(out, "pk", PQgetvalue(res, r, 3), false);
	put_str(out, "row", PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4), false);
	put_key(out, "ver_us", false);
	buf_puts(out, PQgetvalue(res, r, 5));
	put_str(out, "origin", PQgetvalue(res, r, 6), false);
	put_key(out, "immediate", false);
	buf_puts(out, strcmp(PQgetvalue(res, r, 7), "immediate") == 0 ? "true" : "false");
	put_key(out, "txn_end", false);
	buf_puts(out, PQgetvalue(res, r, 8));
	buf_putc(out, '}');
}

/*
 * A page of the hub's changes after seq rq->after: about rq->limit of them,
 * always ending where a transaction ends, so the client can commit each page
 * with its position.
 */
static int
do_changes(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	PGresult   *res;
	int64_t		last = 0,
				need = 0;		/* the last seq of the last transaction begun */
	int			n = 0;
	bool		more = false;

	if (hub_exec(h, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) < 0)
		return -1;
	if (hub_changes_open(h, rq->position, rq->target, rq->after, rq->node_id, err, errlen) < 0)
		return -1;
	buf_puts(out, "{\"changes\":[");
	for (int want = rq->limit;;)
	{
		res = hub_fetch(h, "syncq_down", want, err, errlen);
		if (res == NULL)
			return -1;
		for (int r = 0; r < PQntuples(res); r++)
		{
			int64_t		seq = strtoll(PQgetvalue(res, r, 0), NULL, 10),
						end = strtoll(PQgetvalue(res, r, 8), NULL, 10);

			if (n >= rq->limit && last >= need)
			{
				more = true;	/* a row past the end of the page */
				break;
			}
			put_change(out, res, r, n == 0);
			n++;
			last = seq;
			if (end > need)
				need = end;
		}
		if (more || PQntuples(res) < want)
		{
			PQclear(res);
			break;
		}
		PQclear(res);
		want = 1000;			/* finish the transaction, and see what follows */
	}
	buf_printf(out, "],\"more\":%s}", more ? "true" : "false");
	return hub_exec(h, "COMMIT", err, errlen);
}

/*
 * A page of table rq->table for a first sync, in primary key order after
 * the key rq->after_pk. 404 for a table the hub does not track.
 */
static int
do_rows(Hub *h, const ProtoRequest *rq, Buf *out, unsigned int *code, char *err, size_t errlen)
{
	const HubTable *t;
	Buf			sql = {0},
				keys = {0},
				cols = {0};
	char		lim[16];
	const char *params[2];
	PGresult   *res;
	int			n;

	if (hub_load_tables(h, err, errlen) < 0)
		return -1;
	t = hub_table(h, rq->table);
	if (t == NULL)
	{
		*code = MHD_HTTP_NOT_FOUND;
		snprintf(err, errlen, "table \"%s\" is not tracked on the hub", rq->table);
		return -1;
	}
	if (rq->after_pk)
	{
		JObject		o;
		char		e[128];
		int			found = 0;

		if (jobj_parse(rq->after_pk, strlen(rq->after_pk), &o, e, sizeof(e)) < 0)
		{
			*code = MHD_HTTP_BAD_REQUEST;
			snprintf(err, errlen, "\"after\": %s", e);
			return -1;
		}
		for (int i = 0; i < o.n; i++)
		{
			int			c = hub_col(t, o.f[i].key);

			if (c < 0 || !t->is_pk[c])
			{
				*code = MHD_HTTP_BAD_REQUEST;
				snprintf(err, errlen, "\"after\": \"%.64s\" is not a primary key column of \"%s\"", o.f[i].key, t->name);
				jobj_free(&o);
				return -1;
			}
			found++;
		}
		jobj_free(&o);
		if (found != t->npk)
		{
			*code = MHD_HTTP_BAD_REQUEST;
			snprintf(err, errlen, "\"after\" must give every primary key column of \"%s\" once", t->name);
			return -1;
		}
	}
	/* the key columns in the primary key's order, for its index */
	for (int k = 1; k <= t->npk; k++)
		for (int c = 0; c < t->ncols; c++)
			if (t->pk_pos[c] == k)
			{
				char	   *q = hub_quote_ident(h, t->cols[c]);

				buf_printf(&keys, "%ssyncq_row.%s", keys.len ? ", " : "", q);
				buf_printf(&cols, "%ssyncq_key.%s", cols.len ? ", " : "", q);
				free(q);
			}
	snprintf(lim, sizeof(lim), "%d", rq->limit + 1);
	buf_printf(&sql, "SELECT row_to_json(syncq_row)::text FROM ONLY %s AS syncq_row", t->qname);
	if (rq->after_pk)
		buf_printf(&sql, " WHERE (%s) > (SELECT %s FROM json_populate_record(NULL::%s, $2::json) AS syncq_key)",
				   keys.p, cols.p, t->qname);
	buf_printf(&sql, " ORDER BY %s LIMIT $1::int", keys.p);
	params[0] = lim;
	params[1] = rq->after_pk;
	res = hub_run(h, sql.p, rq->after_pk ? 2 : 1, params, PGRES_TUPLES_OK, err, errlen);
	buf_free(&sql);
	buf_free(&keys);
	buf_free(&cols);
	if (res == NULL)
	{
		/* a key value its column's type refuses: the client's mistake */
		if (strncmp(h->sqlstate, "22", 2) == 0)
		{
			*code = MHD_HTTP_BAD_REQUEST;
			snprintf(err + strlen(err), errlen - strlen(err), " (in \"after\")");
		}
		return -1;
	}
	n = PQntuples(res) > rq->limit ? rq->limit : PQntuples(res);
	buf_puts(out, "{\"rows\":[");
	for (int r = 0; r < n; r++)
	{
		if (r)
			buf_putc(out, ',');
		buf_json_string(out, PQgetvalue(res, r, 0), (size_t) PQgetlength(res, r, 0));
	}
	buf_printf(out, "],\"more\":%s", PQntuples(res) > rq->limit ? "true" : "false");
	if (n > 0)
	{
		JObject		row,
					key = {0};
		Buf			k = {0};
		char		e[128];

		if (jobj_parse(PQgetvalue(res, n - 1, 0), (size_t) PQgetlength(res, n - 1, 0), &row, e, sizeof(e)) == 0)
		{
			/* the last row's key, for the next page's "after" */
			for (int i = 0; i < row.n; i++)
			{
				int			c = hub_col(t, row.f[i].key);

				if (c >= 0 && t->is_pk[c])
				{
					if (key.n == key.cap)
					{
						key.cap = key.cap ? key.cap * 2 : 4;
						key.f = xrealloc(key.f, (size_t) key.cap * sizeof(JField));
					}
					key.f[key.n++] = row.f[i];
				}
			}
			buf_json_object(&k, &key);
			put_str(out, "last", k.p, false);
			free(key.f);
			buf_free(&k);
			jobj_free(&row);
		}
	}
	buf_putc(out, '}');
	PQclear(res);
	return 0;
}

static int
do_done(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	long		pruned;

	if (hub_note_position(h, rq->node_id, rq->position, err, errlen) < 0)
		return -1;
	pruned = hub_prune_if_due(h, err, errlen);
	if (pruned < 0)
		return -1;
	if (pruned > 0)
		logmsg(LOG_INFO, "pruned %ld hub queue rows every active client has", pruned);
	buf_putc(out, '{');
	put_int(out, "pruned", pruned, true);
	buf_putc(out, '}');
	return 0;
}

static int
do_errors(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	long		count = hub_count_errors(h, rq->node_id, err, errlen),
				conflicts = -1;
	HubError   *rows = NULL;
	int			n = 0;

	if (count < 0)
		return -1;
	if (count > 0 && rq->max > 0 &&
		(n = hub_list_errors(h, rq->node_id, rq->max, &rows, err, errlen)) < 0)
		return -1;
	if (rq->conflicts && (conflicts = hub_count_conflicts(h, rq->node_id, err, errlen)) < 0)
	{
		hub_errors_free(rows, n);
		return -1;
	}
	buf_putc(out, '{');
	put_int(out, "count", count, true);
	put_key(out, "changes", false);
	buf_putc(out, '[');
	for (int i = 0; i < n; i++)
	{
		const HubError *e = &rows[i];
		char		op[2] = {e->op, 0};

		buf_puts(out, i ? ",{" : "{");
		put_int(out, "seq", e->seq, true);
		put_str(out, "table", e->table, false);
		put_str(out, "op", op, false);
		put_str(out, "pk", e->pk, false);
		put_str(out, "error", e->error, false);
		put_str(out, "first_failed", e->first_failed, false);
		put_str(out, "last_failed", e->last_failed, false);
		put_int(out, "attempts", e->attempts, false);
		buf_putc(out, '}');
	}
	buf_putc(out, ']');
	put_key(out, "conflicts", false);
	if (conflicts >= 0)
		buf_printf(out, "%ld", conflicts);
	else
		buf_puts(out, "null");
	buf_putc(out, '}');
	hub_errors_free(rows, n);
	return 0;
}

/*
 * May this user act for this node id? The admin may act for any; another
 * user for the node ids bound to it: a node id is bound to the first user
 * that uses it (sync_http_nodes). 1 yes, 0 no, -1 error.
 */
static int
node_allowed(Serve *s, Hub *h, const Request *req, const char *node_id, char *err, size_t errlen)
{
	const char *params[2] = {node_id, req->user};
	PGresult   *res;
	int			ok = -1;

	if (req->admin)
		return 1;
	pthread_mutex_lock(&s->bind_mu);
	for (int i = 0; i < s->nbind; i++)
		if (strcmp(s->bind_node[i], node_id) == 0)
			ok = strcmp(s->bind_user[i], req->user) == 0;
	pthread_mutex_unlock(&s->bind_mu);
	if (ok >= 0)
		return ok;
	res = hub_run(h, "WITH b AS (INSERT INTO sync_http_nodes (node_id, http_user) VALUES ($1::uuid, $2)"
				  " ON CONFLICT (node_id) DO NOTHING RETURNING http_user)"
				  " SELECT http_user FROM b UNION ALL"
				  " SELECT http_user FROM sync_http_nodes WHERE node_id = $1::uuid",
				  2, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	ok = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), req->user) == 0;
	pthread_mutex_lock(&s->bind_mu);
	if (s->nbind >= BIND_CACHE_MAX)
	{
		/* forget them all: the hub has them */
		for (int i = 0; i < s->nbind; i++)
		{
			free(s->bind_node[i]);
			free(s->bind_user[i]);
		}
		s->nbind = 0;
	}
	s->bind_node = xrealloc(s->bind_node, (size_t) (s->nbind + 1) * sizeof(char *));
	s->bind_user = xrealloc(s->bind_user, (size_t) (s->nbind + 1) * sizeof(char *));
	s->bind_node[s->nbind] = xstrdup(node_id);
	s->bind_user[s->nbind++] = xstrdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	pthread_mutex_unlock(&s->bind_mu);
	PQclear(res);
	return ok;
}

static enum MHD_Result
handle_data(Serve *s, struct MHD_Connection *conn, Request *req)
{
	ProtoRequest rq;
	char		err[2048];
	Hub		   *h;
	Buf			out = {0};
	int			rc = -1,
				allowed;
	unsigned int code = MHD_HTTP_OK;
	bool		clone = false;
	enum MHD_Result ret;

	int64_t		t0 = mono_us(),
				t1;

	if (proto_decode_request(req->body.p ? req->body.p : "", req->body.len, &rq, err, sizeof(err)) < 0)
		return reply_error(s, conn, MHD_HTTP_BAD_REQUEST, NULL, NULL, "%s", err);
	t1 = mono_us();
	if (rq.op == OP_UPLOAD)
	{
		pthread_mutex_lock(&s->up_mu);
		while (s->up_busy >= UPLOAD_SLOTS)
			pthread_cond_wait(&s->up_cv, &s->up_mu);
		s->up_busy++;
		pthread_mutex_unlock(&s->up_mu);
	}
	h = pool_get(&s->pool, err, sizeof(err));
	if (h == NULL)
	{
		ret = reply_hub_error(s, conn, NULL, "the hub", err);
		goto done;
	}
	allowed = node_allowed(s, h, req, rq.node_id, err, sizeof(err));
	if (allowed == 0)
	{
		pool_put(&s->pool, h);
		logmsg(LOG_WARNING, "user \"%s\" asked to act for node %s, which belongs to another user: refused",
			   req->user, rq.node_id);
		ret = reply_error(s, conn, MHD_HTTP_FORBIDDEN, NULL, NULL,
						  "node %s belongs to another user", rq.node_id);
		goto done;
	}
	if (allowed > 0)
	{
		switch (rq.op)
		{
			case OP_HELLO:
				rc = do_hello(h, &rq, &out, err, sizeof(err));
				break;
			case OP_UPLOAD:
				rc = do_upload(h, &rq, &out, &clone, err, sizeof(err));
				break;
			case OP_SNAPSHOT:
				rc = do_snapshot(h, &rq, &out, err, sizeof(err));
				break;
			case OP_CHANGES:
				rc = do_changes(h, &rq, &out, err, sizeof(err));
				break;
			case OP_ROWS:
				rc = do_rows(h, &rq, &out, &code, err, sizeof(err));
				break;
			case OP_DONE:
				rc = do_done(h, &rq, &out, err, sizeof(err));
				break;
			case OP_ERRORS:
				rc = do_errors(h, &rq, &out, err, sizeof(err));
				break;
		}
	}
	if (rc < 0)
	{
		char		what[128];

		snprintf(what, sizeof(what), "node %s, %s", rq.node_id, proto_op_name(rq.op));
		buf_free(&out);
		if (clone)
			ret = reply_error(s, conn, MHD_HTTP_CONFLICT, NULL, NULL, "%s", err);
		else if (rq.op == OP_UPLOAD && h->up.overtaken)
		{
			json_t	   *o = json_object();

			/* not a failure: the client sends the upload again at once */
			pthread_mutex_lock(&s->count_mu);
			s->overtaken++;
			pthread_mutex_unlock(&s->count_mu);
			count_reply(s, MHD_HTTP_OK);
			json_object_set_new(o, "error", json_stringn_nocheck(err, strlen(err)));
			json_object_set_new(o, "status", json_integer(MHD_HTTP_SERVICE_UNAVAILABLE));
			json_object_set_new(o, "overtaken", json_true());
			ret = reply_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, o, NULL, NULL);
		}
		else if (code != MHD_HTTP_OK)
			ret = reply_error(s, conn, code, NULL, NULL, "%s", err);
		else
			ret = reply_hub_error(s, conn, h, what, err);
	}
	else
	{
		count_reply(s, MHD_HTTP_OK);
		logmsg(LOG_DEBUG, "node %s: %s of %zu bytes: decoded in %.1f ms, answered %zu bytes in %.1f ms",
			   rq.node_id, proto_op_name(rq.op), req->body.len, (double) (t1 - t0) / 1e3,
			   out.len, (double) (mono_us() - t1) / 1e3);
		ret = reply_buf(conn, MHD_HTTP_OK, &out);
	}
	pool_put(&s->pool, h);
done:
	if (rq.op == OP_UPLOAD)
	{
		pthread_mutex_lock(&s->up_mu);
		s->up_busy--;
		pthread_cond_signal(&s->up_cv);
		pthread_mutex_unlock(&s->up_mu);
	}
	proto_request_free(&rq);
	return ret;
}

/*
 * GET /api/sync/wait?serve=ID&changes=N&requests=M&node=UUID: a long poll.
 * Answers when the hub's wake-up counters pass N or M, except for change
 * wake-ups caused by node's own uploads, or after WAIT_MAX_S; "wake" says
 * why ("change", "request" or null). Counters of another serve process
 * (ID) mean nothing here: it answers at once then.
 */
static enum MHD_Result
handle_wait(Serve *s, struct MHD_Connection *conn)
{
	const char *ch = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "changes"),
			   *rq = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "requests"),
			   *id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "serve"),
			   *node = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "node");
	int64_t		c0 = ch ? strtoll(ch, NULL, 10) : 0,
				r0 = rq ? strtoll(rq, NULL, 10) : 0,
				c,
				r;
	bool		fresh = id == NULL || strcmp(id, s->serve_id) != 0 || c0 < 0 || r0 < 0;
	const char *wake = NULL;
	struct timespec until;
	Buf			out = {0};

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MAX_S;
	pthread_mutex_lock(&s->wakes.mu);
	while (!fresh && !s->wakes.stop && !stop_requested)
	{
		if (s->wakes.requests > r0)
		{
			wake = "request";
			break;
		}
		if (s->wakes.changes > c0)
		{
			/* anyone's but this node's own? */
			if (s->wakes.changes - c0 > WAKE_RING - 8 || node == NULL)
				wake = "change";
			for (int64_t g = c0 + 1; wake == NULL && g <= s->wakes.changes; g++)
				if (strcmp(s->wakes.origin[g % WAKE_RING], node) != 0)
					wake = "change";
			if (wake)
				break;
			c0 = s->wakes.changes;
		}
		if (pthread_cond_timedwait(&s->wakes.cv, &s->wakes.mu, &until) == ETIMEDOUT)
			break;
	}
	c = s->wakes.changes;
	r = s->wakes.requests;
	pthread_mutex_unlock(&s->wakes.mu);
	buf_putc(&out, '{');
	put_str(&out, "serve", s->serve_id, true);
	put_int(&out, "changes", c, false);
	put_int(&out, "requests", r, false);
	put_str(&out, "wake", wake, false);
	buf_putc(&out, '}');
	count_reply(s, MHD_HTTP_OK);
	return reply_buf(conn, MHD_HTTP_OK, &out);
}

/* ---- status ------------------------------------------------------------------ */

static json_t *
jtext(const char *s)
{
	return s ? json_stringn_nocheck(s, strlen(s)) : json_null();
}

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
				v = jtext(PQgetvalue(res, r, c));
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
		json_object_set_new(o, "database_error", jtext(err));
		json_decref(depth);
		json_decref(errors);
		json_decref(confl);
		return o;
	}
	json_object_set_new(o, "node_id", json_string(h->node_id));
	json_object_set_new(o, "database", jtext(PQdb(h->conn)));
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
		json_object_set_new(tz, "eastern_date", jtext(PQgetvalue(res, 0, 3)));
		json_object_set_new(tz, "now", jtext(PQgetvalue(res, 0, 4)));
		json_object_set_new(o, "timezone", tz);
	}
	PQclear(res);
	pool_put(&s->pool, h);
	return o;
}

/* POST /api/sync/trigger on serve: every listening client syncs. */
static enum MHD_Result
handle_trigger(Serve *s, struct MHD_Connection *conn)
{
	char		err[1024];
	int64_t		now = mono_us(),
				wait_s = 0;
	Hub		   *h;
	json_t	   *o;

	pthread_mutex_lock(&s->count_mu);
	if (s->last_trigger_us && now - s->last_trigger_us < TRIGGER_GAP_S * 1000000LL)
		wait_s = (TRIGGER_GAP_S * 1000000LL - (now - s->last_trigger_us) + 999999) / 1000000;
	else
		s->last_trigger_us = now;
	pthread_mutex_unlock(&s->count_mu);
	if (wait_s > 0)
	{
		char		ra[16];

		snprintf(ra, sizeof(ra), "%" PRId64, wait_s);
		return reply_error(s, conn, MHD_HTTP_TOO_MANY_REQUESTS, MHD_HTTP_HEADER_RETRY_AFTER, ra,
						   "a sync was asked for less than %d s ago; try again in %" PRId64 " s", TRIGGER_GAP_S, wait_s);
	}
	h = pool_get(&s->pool, err, sizeof(err));
	if (h == NULL || hub_exec(h, "SELECT sync_trigger()", err, sizeof(err)) < 0)
	{
		enum MHD_Result ret = reply_hub_error(s, conn, h, "sync_trigger()", err);

		if (h)
			pool_put(&s->pool, h);
		return ret;
	}
	pool_put(&s->pool, h);
	count_reply(s, MHD_HTTP_ACCEPTED);
	o = json_object();
	json_object_set_new(o, "message", json_string("sync requested of every listening client"));
	return reply_json(conn, MHD_HTTP_ACCEPTED, o, NULL, NULL);
}

/* ---- routing ------------------------------------------------------------------- */

static enum MHD_Result
deny(Serve *s, struct MHD_Connection *conn)
{
	return reply_error(s, conn, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					   "Basic realm=\"syncq\", charset=\"UTF-8\"", "authentication required");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	Serve	   *s = cls;
	Request    *req = *con_cls;
	bool		get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool		post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	(void) version;
	if (req == NULL)
	{
		/* headers only: check who it is and how much is coming first */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		const char *au = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

		req = xcalloc(1, sizeof(Request));
		*con_cls = req;
		if (au)
		{
			/* a password check may take ~16 MB for yescrypt: a few at once */
			pthread_mutex_lock(&s->auth_mu);
			while (s->auth_busy >= AUTH_SLOTS)
				pthread_cond_wait(&s->auth_cv, &s->auth_mu);
			s->auth_busy++;
			pthread_mutex_unlock(&s->auth_mu);
			req->authed = auth_check(s->auth, au, req->user, sizeof(req->user), &req->admin);
			pthread_mutex_lock(&s->auth_mu);
			s->auth_busy--;
			pthread_cond_signal(&s->auth_cv);
			pthread_mutex_unlock(&s->auth_mu);
		}
		if (!req->authed)
			return deny(s, conn);
		if (cl && strtoll(cl, NULL, 10) > s->max_body)
			return reply_error(s, conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
							   "the body is larger than %ld bytes (serve --max-body)", s->max_body);
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		if ((long) (req->body.len + *upload_data_size) > s->max_body)
			req->too_big = true;
		else if (!req->too_big)
			buf_putn(&req->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_big)
		return reply_error(s, conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
						   "the body is larger than %ld bytes (serve --max-body)", s->max_body);

	if (strcmp(url, "/api/sync/data") == 0)
	{
		if (!post)
			return reply_error(s, conn, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, "POST",
							   "method %s is not allowed on %s; use POST", method, url);
		return handle_data(s, conn, req);
	}
	if (strcmp(url, "/api/sync/wait") == 0)
	{
		if (!get)
			return reply_error(s, conn, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, "GET",
							   "method %s is not allowed on %s; use GET", method, url);
		return handle_wait(s, conn);
	}
	if (strcmp(url, "/api/sync/status") == 0 || strcmp(url, "/") == 0)
	{
		json_t	   *st;

		if (!get)
			return reply_error(s, conn, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, "GET, HEAD",
							   "method %s is not allowed on %s; use GET", method, url);
		if (!req->admin)
			return reply_error(s, conn, MHD_HTTP_FORBIDDEN, NULL, NULL,
							   "the hub's status is for the admin user ($AMRS_ADMIN_USERNAME)");
		st = hub_status(s);
		count_reply(s, MHD_HTTP_OK);
		if (url[1] == '\0')
		{
			char	   *html = status_page_html(st);

			json_decref(st);
			return reply_bytes(conn, MHD_HTTP_OK, "text/html; charset=utf-8", html, strlen(html), NULL, NULL);
		}
		return reply_json(conn, MHD_HTTP_OK, st, NULL, NULL);
	}
	if (strcmp(url, "/api/sync/trigger") == 0)
	{
		if (!post)
			return reply_error(s, conn, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, "POST",
							   "method %s is not allowed on %s; use POST", method, url);
		return handle_trigger(s, conn);
	}
	return reply_error(s, conn, MHD_HTTP_NOT_FOUND, NULL, NULL,
					   "no such resource; try POST /api/sync/data, GET /api/sync/status or GET /");
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	Request    *req = *con_cls;

	(void) cls;
	(void) conn;
	(void) toe;
	if (req)
	{
		buf_free(&req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* ---- the command ----------------------------------------------------------------- */

static void
usage(void)
{
	printf("syncqd serve puts a PostgreSQL hub on HTTP(S) for syncqd clients.\n\n"
		   "Usage:\n"
		   "  syncqd serve --postgres CONNINFO --listen HOST:PORT [OPTION]...\n\n"
		   "  -p, --postgres=CONNINFO  the hub: a postgresql:// URL or libpq conninfo\n"
		   "  -L, --listen=HOST:PORT   where to listen, e.g. 0.0.0.0:8443\n"
		   "      --tls-cert=FILE      serve HTTPS with this certificate (PEM) ...\n"
		   "      --tls-key=FILE       ... and this private key (PEM)\n"
		   "      --credentials=FILE   users, one \"user:hash\" line each (syncqd passwd);\n"
		   "                           $AMRS_ADMIN_USERNAME/$AMRS_ADMIN_PASSWORD add the admin\n"
		   "      --max-body=BYTES     refuse larger requests with 413 (default %ld)\n"
		   "      --pool=N             hub connections at most (default %d)\n"
		   "  -l, --log-file=FILE      log there instead of stderr\n"
		   "      --log-level=LEVEL    debug, info, warning or error (default info)\n"
		   "  -h, --help               show this help and exit\n\n"
		   "Signals: SIGTERM or SIGINT finish the requests at hand and exit 0.\n",
		   MAX_BODY_DEFAULT, POOL_DEFAULT);
}

static void
serve_bad_args(const char *fmt, const char *arg)
{
	fputs("syncqd serve: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry \"syncqd serve --help\" for more information.\n", stderr);
	exit(1);
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "rb");
	Buf			b = {0};
	char		chunk[8192];
	size_t		n;

	if (f == NULL)
	{
		snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_putn(&b, chunk, n);
	fclose(f);
	if (b.p == NULL)
		snprintf(err, errlen, "\"%s\" is empty", path);
	return b.p;
}

int
serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"postgres", required_argument, NULL, 'p'},
		{"listen", required_argument, NULL, 'L'},
		{"tls-cert", required_argument, NULL, 'C'},
		{"tls-key", required_argument, NULL, 'K'},
		{"credentials", required_argument, NULL, 'u'},
		{"max-body", required_argument, NULL, 'm'},
		{"pool", required_argument, NULL, 'P'},
		{"log-file", required_argument, NULL, 'l'},
		{"log-level", required_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *pg = NULL,
			   *listen_at = NULL,
			   *cert_file = NULL,
			   *key_file = NULL,
			   *cred_file = NULL,
			   *log_file = NULL;
	char	   *cert = NULL,
			   *key = NULL;
	Serve		s = {0};
	char		err[2048],
				host[256],
				port[16];
	int			c,
				status = 0;
	struct addrinfo hints = {0},
			   *ai = NULL;
	struct MHD_Daemon *d;
	pthread_t	listener;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_ERROR_LOG | MHD_USE_AUTO;
	sigset_t	block,
				orig;

	s.max_body = MAX_BODY_DEFAULT;
	s.pool.max = POOL_DEFAULT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:L:l:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'p':
				pg = optarg;
				break;
			case 'L':
				listen_at = optarg;
				break;
			case 'C':
				cert_file = optarg;
				break;
			case 'K':
				key_file = optarg;
				break;
			case 'u':
				cred_file = optarg;
				break;
			case 'm':
				{
					char	   *end;

					errno = 0;
					s.max_body = strtol(optarg, &end, 10);
					if (errno || *end || s.max_body < 1024 || s.max_body > 2147483647L)
						serve_bad_args("invalid --max-body \"%s\": give bytes, from 1024 to 2147483647", optarg);
					break;
				}
			case 'P':
				{
					char	   *end;

					s.pool.max = (int) strtol(optarg, &end, 10);
					if (*end || s.pool.max < 1 || s.pool.max > 1000)
						serve_bad_args("invalid --pool \"%s\": give a number of connections, from 1 to 1000", optarg);
					break;
				}
			case 'l':
				log_file = optarg;
				break;
			case 'v':
				if (log_level_set(optarg) < 0)
					serve_bad_args("invalid --log-level \"%s\": debug, info, warning or error", optarg);
				break;
			case 'h':
				usage();
				return 0;
			default:
				fputs("Try \"syncqd serve --help\" for more information.\n", stderr);
				return 1;
		}
	}
	if (optind < argc)
		serve_bad_args("unexpected argument \"%s\"", argv[optind]);
	if (pg == NULL)
		serve_bad_args("%s", "no hub: give --postgres CONNINFO");
	if (listen_at == NULL)
		serve_bad_args("%s", "no address: give --listen HOST:PORT");
	if (control_parse(listen_at, host, sizeof(host), port, sizeof(port), err, sizeof(err)) < 0)
		serve_bad_args("invalid --listen \"%s\": give HOST:PORT, e.g. 0.0.0.0:8443", listen_at);
	if ((cert_file == NULL) != (key_file == NULL))
		serve_bad_args("%s", "HTTPS needs both --tls-cert and --tls-key");
	if (log_file && log_open(log_file, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "syncqd serve: %s\n", err);
		return 1;
	}
	s.auth = auth_load(cred_file, err, sizeof(err));
	if (s.auth == NULL)
	{
		fprintf(stderr, "syncqd serve: %s\n", err);
		return 1;
	}
	if (cert_file && ((cert = read_file(cert_file, err, sizeof(err))) == NULL ||
					  (key = read_file(key_file, err, sizeof(err))) == NULL))
	{
		fprintf(stderr, "syncqd serve: TLS: %s\n", err);
		free(cert);
		auth_free(s.auth);
		return 1;
	}

	s.pool.conninfo = xstrdup(pg);
	s.pool.idle = xcalloc((size_t) s.pool.max, sizeof(Hub *));
	pthread_mutex_init(&s.pool.mu, NULL);
	pthread_cond_init(&s.pool.cv, NULL);
	pthread_mutex_init(&s.wakes.mu, NULL);
	pthread_cond_init(&s.wakes.cv, NULL);
	pthread_mutex_init(&s.bind_mu, NULL);
	pthread_mutex_init(&s.count_mu, NULL);
	pthread_mutex_init(&s.up_mu, NULL);
	pthread_cond_init(&s.up_cv, NULL);
	pthread_mutex_init(&s.auth_mu, NULL);
	pthread_cond_init(&s.auth_cv, NULL);
	s.started_us = now_us();
	snprintf(s.serve_id, sizeof(s.serve_id), "%08x%08x", (unsigned) getpid(),
			 (unsigned) (jitter01() * 4294967295.0));

	/* the hub must be there and have syncq before we listen */
	{
		Hub		   *h = pool_get(&s.pool, err, sizeof(err));

		if (h == NULL)
		{
			fprintf(stderr, "syncqd serve: %s\n", err);
			status = 1;
			goto out;
		}
		logmsg(LOG_INFO, "hub: database \"%s\" on %s:%s, node %s", PQdb(h->conn), PQhost(h->conn),
			   PQport(h->conn), h->node_id);
		pool_put(&s.pool, h);
	}

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((c = getaddrinfo(host, port, &hints, &ai)) != 0)
	{
		fprintf(stderr, "syncqd serve: cannot resolve \"%s\": %s\n", host, gai_strerror(c));
		status = 1;
		goto out;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cert)
		flags |= MHD_USE_TLS;

	signals_install();
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	/* the threads inherit the mask: signals come to this thread */
	pthread_sigmask(SIG_BLOCK, &block, &orig);
	if (cert)
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &s,
							 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
							 MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
							 MHD_OPTION_EXTERNAL_LOGGER, log_mhd, (void *) "serve",
							 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120,
							 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
							 MHD_OPTION_HTTPS_MEM_CERT, cert,
							 MHD_OPTION_HTTPS_MEM_KEY, key,
							 MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-SSL3.0",
							 MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &s,
							 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
							 MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
							 MHD_OPTION_EXTERNAL_LOGGER, log_mhd, (void *) "serve",
							 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120,
							 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
							 MHD_OPTION_END);
	if (d == NULL)
	{
		pthread_sigmask(SIG_SETMASK, &orig, NULL);
		fprintf(stderr, "syncqd serve: cannot listen on %s: %s\n", listen_at,
				errno ? strerror(errno) : "the address is in use or not ours");
		status = 1;
		goto out;
	}
	if ((c = pthread_create(&listener, NULL, listener_main, &s)) != 0)
	{
		pthread_sigmask(SIG_SETMASK, &orig, NULL);
		fprintf(stderr, "syncqd serve: cannot start the thread that listens for the hub's wake-ups: %s\n",
				strerror(c));
		MHD_stop_daemon(d);
		status = 1;
		goto out;
	}
	pthread_sigmask(SIG_SETMASK, &orig, NULL);
	{
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

		logmsg(LOG_INFO, "syncqd %s serve listening on %s:%u (%s), max body %ld bytes, %d hub connections",
			   SYNCQD_VERSION, host, info ? info->port : 0, cert ? "HTTPS" : "HTTP",
			   s.max_body, s.pool.max);
	}

	while (!stop_requested)
	{
		if (reopen_requested)
		{
			reopen_requested = 0;
			if (log_file && log_open(log_file, err, sizeof(err)) < 0)
				fprintf(stderr, "syncqd serve: %s\n", err);
		}
		sigprocmask(SIG_BLOCK, &block, &orig);
		if (!stop_requested && !reopen_requested)
			sigsuspend(&orig);
		sigprocmask(SIG_SETMASK, &orig, NULL);
	}
	logmsg(LOG_INFO, "stopping on request");
	pthread_mutex_lock(&s.wakes.mu);
	s.wakes.stop = true;
	pthread_cond_broadcast(&s.wakes.cv);
	pthread_mutex_unlock(&s.wakes.mu);
	MHD_stop_daemon(d);
	pthread_join(listener, NULL);
out:
	if (ai)
		freeaddrinfo(ai);
	pool_close(&s.pool);
	free(s.pool.conninfo);
	for (int i = 0; i < s.nbind; i++)
	{
		free(s.bind_node[i]);
		free(s.bind_user[i]);
	}
	free(s.bind_node);
	free(s.bind_user);
	free(cert);
	free(key);
	auth_free(s.auth);
	return status;
}
