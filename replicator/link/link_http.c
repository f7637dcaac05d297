/*
 * link_http.c — the hub reached through `syncqd serve` over HTTP(S), with
 * libcurl: a Link whose every step is one POST /api/sync/data
 * (docs/http.md). The sync model is sync.c's, as over libpq.
 *
 * Credentials: $AMRS_ADMIN_USERNAME / $AMRS_ADMIN_PASSWORD, basic auth.
 * TLS is verified against the system's CAs, or --cacert's; there is no
 * switch to turn verification off. One connection is kept alive between
 * steps; replies may come gzip'd. With listen, a thread long-polls
 * GET /api/sync/wait and makes a pipe readable when the hub has news.
 */
#include "base/base.h"
#include "base/buf.h"
#include "link/link.h"
#include "link/link_http.h"
#include "link/proto.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Changes or rows asked for per page. */
#define PAGE_ROWS 20000

/* A step may take this long at most; a link that moves nothing for
 * STALL_S is dead. */
#define STEP_TIMEOUT_S 600
#define STALL_S 60
#define CONNECT_TIMEOUT_S 10

/* After a wake-up, the next long poll waits this long at least. */
#define WAKE_GAP_MS 25

const char *link_http_cacert = NULL;

typedef struct
{
	Link		base;
	char	   *url;			/* the base URL, without a trailing / */
	CURL	   *curl;
	struct curl_slist *headers;
	char	   *user;
	char	   *password;
	bool		broken;			/* the link failed: make a new one */
	char		curl_err[CURL_ERROR_SIZE];
	char		node_id[NODE_ID_LEN + 1];
	/* upload in progress */
	Buf			up;
	int			up_n;
	UploadMark *marks;
	int			capmarks;
	/* download in progress */
	char	   *pos;
	char	   *target;
	int64_t		after;
	char	   *table;
	char	   *after_pk;
	bool		rows_first;
	/* the wake-up thread */
	bool		listening;
	pthread_t	waiter;
	int			pipe[2];
	volatile int stop;
} HttpLink;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	buf_putn(arg, p, size * n);
	return size * n;
}

static void
set_common(HttpLink *hl, CURL *c)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long) CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (link_http_cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, link_http_cacert);
	if (hl->user)
	{
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, hl->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, hl->password ? hl->password : "");
	}
	curl_easy_setopt(c, CURLOPT_USERAGENT, "syncqd/" SYNCQD_VERSION);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
}

/*
 * POST body to /api/sync/data; the reply's JSON in *out. -1 with err (the
 * serve's own error message when it sent one).
 */
static int
post(HttpLink *hl, const Buf *body, const char *what, json_t **out, char *err, size_t errlen)
{
	Buf			reply = {0};
	Buf			url = {0};
	long		code = 0;
	CURLcode	rc;
	json_error_t je;
	json_t	   *o;
	int64_t		t0;

	*out = NULL;
	buf_printf(&url, "%s/api/sync/data", hl->url);
	curl_easy_setopt(hl->curl, CURLOPT_URL, url.p);
	curl_easy_setopt(hl->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(hl->curl, CURLOPT_POSTFIELDS, body->p);
	curl_easy_setopt(hl->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body->len);
	curl_easy_setopt(hl->curl, CURLOPT_HTTPHEADER, hl->headers);
	curl_easy_setopt(hl->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(hl->curl, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(hl->curl, CURLOPT_TIMEOUT, (long) STEP_TIMEOUT_S);
	curl_easy_setopt(hl->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(hl->curl, CURLOPT_LOW_SPEED_TIME, (long) STALL_S);
	curl_easy_setopt(hl->curl, CURLOPT_ERRORBUFFER, hl->curl_err);
	hl->curl_err[0] = '\0';
	t0 = mono_us();
	rc = curl_easy_perform(hl->curl);
	buf_free(&url);
	logmsg(LOG_DEBUG, "serve: %s: %zu bytes sent, %zu received in %.1f ms", what, body->len,
		   reply.len, (double) (mono_us() - t0) / 1e3);
	if (rc != CURLE_OK)
	{
		hl->broken = true;
		snprintf(err, errlen, "serve %s: %s: %s", hl->url, what,
				 hl->curl_err[0] ? hl->curl_err : curl_easy_strerror(rc));
		buf_free(&reply);
		return -1;
	}
	curl_easy_getinfo(hl->curl, CURLINFO_RESPONSE_CODE, &code);
	o = reply.p ? json_loadb(reply.p, reply.len, 0, &je) : NULL;
	if (code != 200)
	{
		json_t	   *e = o ? json_object_get(o, "error") : NULL;

		if (code == 401)
			snprintf(err, errlen, "serve %s refused the credentials (401): check $AMRS_ADMIN_USERNAME and $AMRS_ADMIN_PASSWORD",
					 hl->url);
		else if (code == 409)
		{
			hl->base.clone = true;
			snprintf(err, errlen, "%s", e && json_is_string(e) ? json_string_value(e) : "serve: 409 Conflict");
		}
		else
			snprintf(err, errlen, "serve %s: %s: HTTP %ld: %s", hl->url, what, code,
					 e && json_is_string(e) ? json_string_value(e) : "(no message)");
		if (o && json_is_true(json_object_get(o, "overtaken")))
			hl->base.overtaken = true;
		else if (code >= 500 || code == 408 || code == 429)
			hl->broken = true;
		json_decref(o);
		buf_free(&reply);
		return -1;
	}
	buf_free(&reply);
	if (o == NULL || !json_is_object(o))
	{
		hl->broken = true;
		snprintf(err, errlen, "serve %s: %s: the reply is not a JSON object", hl->url, what);
		json_decref(o);
		return -1;
	}
	*out = o;
	return 0;
}

/* The start of every request body. */
static void
begin_body(HttpLink *hl, Buf *b, const char *op)
{
	buf_reset(b);
	buf_printf(b, "{\"v\":%d,\"op\":\"%s\",\"node_id\":\"%s\"", PROTO_VERSION, op, hl->node_id);
}

static void
put_snapshot(Buf *b, const char *key, const char *snap)
{
	buf_printf(b, ",\"%s\":", key);
	if (snap)
		buf_json_string(b, snap, strlen(snap));
	else
		buf_puts(b, "null");
}

static int64_t
jint(json_t *o, const char *key)
{
	json_t	   *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *
jstr(json_t *o, const char *key)
{
	json_t	   *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
free_tables(Link *l)
{
	hub_tables_free(l->tables, l->ntables);
	l->tables = NULL;
	l->ntables = 0;
}

static int
http_hello(Link *l, const char *client_id, bool retry_errors, UploadStats *retried,
		   char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			b = {0};
	json_t	   *o,
			   *tables,
			   *t;
	size_t		i;
	const char *hub;

	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	begin_body(hl, &b, "hello");
	buf_printf(&b, ",\"retry_errors\":%s}", retry_errors ? "true" : "false");
	if (post(hl, &b, "hello", &o, err, errlen) < 0)
	{
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	hub = jstr(o, "hub_node_id");
	tables = json_object_get(o, "tables");
	if (hub == NULL || !proto_is_uuid(hub) || !json_is_array(tables))
	{
		snprintf(err, errlen, "serve %s: hello: the reply lacks hub_node_id or tables", hl->url);
		json_decref(o);
		return -1;
	}
	snprintf(l->hub_node_id, sizeof(l->hub_node_id), "%s", hub);
	free_tables(l);
	l->tables = xcalloc(json_array_size(tables) + 1, sizeof(HubTable));
	json_array_foreach(tables, i, t)
	{
		HubTable   *ht = &l->tables[l->ntables];
		json_t	   *cols = json_object_get(t, "columns"),
				   *c;
		size_t		j;
		const char *name = jstr(t, "name");

		if (name == NULL || !json_is_array(cols))
			continue;
		l->ntables++;
		ht->name = xstrdup(name);
		ht->schema = xstrdup("");
		ht->qname = xstrdup(name);
		ht->cols = xcalloc(json_array_size(cols) + 1, sizeof(char *));
		ht->types = xcalloc(json_array_size(cols) + 1, sizeof(char *));
		ht->is_pk = xcalloc(json_array_size(cols) + 1, sizeof(bool));
		ht->pk_pos = xcalloc(json_array_size(cols) + 1, sizeof(int));
		json_array_foreach(cols, j, c)
		{
			const char *cn = jstr(c, "name"),
					   *ty = jstr(c, "type");

			if (cn == NULL || ty == NULL)
				continue;
			ht->cols[ht->ncols] = xstrdup(cn);
			ht->types[ht->ncols] = xstrdup(ty);
			ht->pk_pos[ht->ncols] = (int) jint(c, "pk");
			ht->is_pk[ht->ncols] = ht->pk_pos[ht->ncols] > 0;
			if (ht->is_pk[ht->ncols])
				ht->npk++;
			ht->ncols++;
		}
	}
	/* serve sends them sorted by name; link_table() relies on it */
	for (int k = 1; k < l->ntables; k++)
		if (strcmp(l->tables[k - 1].name, l->tables[k].name) >= 0)
		{
			snprintf(err, errlen, "serve %s: hello: the tables are not in name order", hl->url);
			json_decref(o);
			return -1;
		}
	t = json_object_get(o, "retried");
	retried->retried = (int) jint(t, "retried");
	retried->conflicts = (int) jint(t, "conflicts");
	json_decref(o);
	return 0;
}

static int
http_up_begin(Link *l, const char *client_id, int64_t ack_seq, uint64_t ack_digest,
			  char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	l->clone = false;
	l->overtaken = false;
	l->nmarks = 0;
	begin_body(hl, &hl->up, "upload");
	buf_printf(&hl->up, ",\"ack_seq\":%" PRId64 ",\"ack_digest\":\"%" PRIx64 "\",\"changes\":[",
			   ack_seq, ack_digest);
	hl->up_n = 0;
	return 0;
}

static int
http_up_chunk(Link *l, const ChangeList *page, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			t = {0};

	(void) err;
	(void) errlen;
	for (int i = 0; i < page->n; i++)
	{
		const Change *c = &page->c[i];

		buf_printf(&hl->up, "%s{\"seq\":%" PRId64 ",\"table\":", hl->up_n++ ? "," : "", c->seq);
		buf_json_string(&hl->up, c->table, strlen(c->table));
		buf_printf(&hl->up, ",\"op\":\"%c\",\"pk\":", c->op);
		buf_reset(&t);
		buf_json_object_tagged(&t, &c->pk);
		buf_json_string(&hl->up, t.p, t.len);
		buf_puts(&hl->up, ",\"row\":");
		if (c->has_row)
		{
			buf_reset(&t);
			buf_json_object_tagged(&t, &c->row);
			buf_json_string(&hl->up, t.p, t.len);
		}
		else
			buf_puts(&hl->up, "null");
		buf_printf(&hl->up, ",\"ver_us\":%" PRId64 ",\"origin\":\"%s\",\"immediate\":%s}",
				   c->ver_us, c->origin, c->immediate ? "true" : "false");
	}
	buf_free(&t);
	return 0;
}

static int
http_up_end(Link *l, UploadStats *st, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	json_t	   *o,
			   *marks,
			   *m;
	size_t		i;
	int			rc;

	buf_puts(&hl->up, "]}");
	rc = post(hl, &hl->up, "upload", &o, err, errlen);
	buf_free(&hl->up);
	st->clone = l->clone;
	if (rc < 0)
		return -1;
	st->applied = (int) jint(o, "applied");
	st->conflicts = (int) jint(o, "conflicts");
	st->skipped = (int) jint(o, "skipped");
	st->parked = (int) jint(o, "parked");
	marks = json_object_get(o, "marks");
	l->nmarks = 0;
	json_array_foreach(marks, i, m)
	{
		json_t	   *seq = json_array_get(m, 0),
				   *dig = json_array_get(m, 1);

		if (!json_is_integer(seq) || !json_is_string(dig))
		{
			snprintf(err, errlen, "serve %s: upload: a mark of the reply is not [seq, \"digest\"]", hl->url);
			json_decref(o);
			return -1;
		}
		if (l->nmarks == hl->capmarks)
		{
			hl->capmarks = hl->capmarks ? hl->capmarks * 2 : 16;
			hl->marks = xrealloc(hl->marks, (size_t) hl->capmarks * sizeof(UploadMark));
		}
		hl->marks[l->nmarks].seq = json_integer_value(seq);
		hl->marks[l->nmarks].digest = strtoull(json_string_value(dig), NULL, 16);
		l->nmarks++;
	}
	l->marks = hl->marks;
	/* what the hub set aside, as serve logged it */
	json_array_foreach(json_object_get(o, "refused"), i, m)
		if (json_is_string(m))
			logmsg(LOG_WARNING, "%s", json_string_value(m));
	if (jint(o, "refused_more") > 0)
		logmsg(LOG_WARNING, "%" PRId64 " more changes set aside in the hub's sync_errors", jint(o, "refused_more"));
	json_decref(o);
	return 0;
}

static int
http_down_begin(Link *l, const char *position, char **snapshot, bool *behind,
				char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			b = {0};
	json_t	   *o;
	const char *snap;

	*snapshot = NULL;
	begin_body(hl, &b, "snapshot");
	put_snapshot(&b, "position", position);
	buf_putc(&b, '}');
	if (post(hl, &b, "snapshot", &o, err, errlen) < 0)
	{
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	snap = jstr(o, "snapshot");
	if (snap == NULL || !proto_is_snapshot(snap))
	{
		snprintf(err, errlen, "serve %s: snapshot: the reply has no snapshot", hl->url);
		json_decref(o);
		return -1;
	}
	*snapshot = xstrdup(snap);
	*behind = json_is_true(json_object_get(o, "behind"));
	json_decref(o);
	return 0;
}

static int
http_changes_open(Link *l, const char *position, const char *target, int64_t done,
				  const char *client_id, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	free(hl->pos);
	free(hl->target);
	hl->pos = xstrdup(position);
	hl->target = xstrdup(target);
	hl->after = done;
	return 0;
}

static void
release_json(void *o)
{
	json_decref(o);
}

static int
http_changes_next(Link *l, LinkPage *p, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			b = {0};
	json_t	   *o,
			   *arr,
			   *c;
	size_t		i;

	link_page_reset(p);
	begin_body(hl, &b, "changes");
	put_snapshot(&b, "position", hl->pos);
	put_snapshot(&b, "target", hl->target);
	buf_printf(&b, ",\"after\":%" PRId64 ",\"limit\":%d}", hl->after, PAGE_ROWS);
	if (post(hl, &b, "changes", &o, err, errlen) < 0)
	{
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	p->owner = o;
	p->release = release_json;
	arr = json_object_get(o, "changes");
	if (!json_is_array(arr))
	{
		snprintf(err, errlen, "serve %s: changes: the reply has no changes array", hl->url);
		return -1;
	}
	json_array_foreach(arr, i, c)
	{
		DownChange *d = link_page_push_change(p);

		d->seq = jint(c, "seq");
		d->table = jstr(c, "table");
		d->op = jstr(c, "op");
		d->pk = jstr(c, "pk");
		d->row = jstr(c, "row");
		d->ver_us = jint(c, "ver_us");
		d->origin = jstr(c, "origin");
		d->immediate = json_is_true(json_object_get(c, "immediate"));
		d->txn_end = jint(c, "txn_end");
		if (d->table == NULL || d->op == NULL || d->pk == NULL || d->origin == NULL ||
			d->seq <= hl->after)
		{
			snprintf(err, errlen, "serve %s: changes: change %zu of the reply is malformed", hl->url, i);
			return -1;
		}
		hl->after = d->seq;
	}
	p->more = json_is_true(json_object_get(o, "more"));
	return 0;
}

static int
http_nothing(Link *l, char *err, size_t errlen)
{
	(void) l;
	(void) err;
	(void) errlen;
	return 0;
}

static int
http_rows_open(Link *l, const HubTable *t, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	free(hl->table);
	free(hl->after_pk);
	hl->table = xstrdup(t->name);
	hl->after_pk = NULL;
	return 0;
}

static int
http_rows_next(Link *l, LinkPage *p, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			b = {0};
	json_t	   *o,
			   *arr,
			   *r;
	size_t		i;
	const char *last;

	link_page_reset(p);
	begin_body(hl, &b, "rows");
	buf_puts(&b, ",\"table\":");
	buf_json_string(&b, hl->table, strlen(hl->table));
	buf_puts(&b, ",\"after\":");
	if (hl->after_pk)
		buf_json_string(&b, hl->after_pk, strlen(hl->after_pk));
	else
		buf_puts(&b, "null");
	buf_printf(&b, ",\"limit\":%d}", PAGE_ROWS);
	if (post(hl, &b, "rows", &o, err, errlen) < 0)
	{
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	p->owner = o;
	p->release = release_json;
	arr = json_object_get(o, "rows");
	if (!json_is_array(arr))
	{
		snprintf(err, errlen, "serve %s: rows: the reply has no rows array", hl->url);
		return -1;
	}
	json_array_foreach(arr, i, r)
	{
		if (!json_is_string(r))
		{
			snprintf(err, errlen, "serve %s: rows: row %zu of the reply is not a string", hl->url, i);
			return -1;
		}
		link_page_push_row(p, json_string_value(r), json_string_length(r));
	}
	p->more = json_is_true(json_object_get(o, "more"));
	last = jstr(o, "last");
	if (p->more && last == NULL)
	{
		snprintf(err, errlen, "serve %s: rows: the reply has more rows but no last key", hl->url);
		return -1;
	}
	free(hl->after_pk);
	hl->after_pk = last ? xstrdup(last) : NULL;
	return 0;
}

static int
http_down_end(Link *l, const char *client_id, const char *stored, long *pruned,
			  char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			b = {0};
	json_t	   *o;

	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	begin_body(hl, &b, "done");
	put_snapshot(&b, "position", stored);
	buf_putc(&b, '}');
	if (post(hl, &b, "done", &o, err, errlen) < 0)
	{
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	*pruned = (long) jint(o, "pruned");
	json_decref(o);
	return 0;
}

static char *
jdup(json_t *o, const char *key)
{
	const char *s = jstr(o, key);

	return xstrdup(s ? s : "");
}

static int
http_errors(Link *l, const char *client_id, int max, long *count, HubError **rows, int *nrows,
			long *conflicts, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	Buf			b = {0};
	json_t	   *o,
			   *arr,
			   *e;
	size_t		i;

	*rows = NULL;
	*nrows = 0;
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	begin_body(hl, &b, "errors");
	buf_printf(&b, ",\"max\":%d,\"conflicts\":%s}", max, conflicts ? "true" : "false");
	if (post(hl, &b, "errors", &o, err, errlen) < 0)
	{
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	*count = (long) jint(o, "count");
	arr = json_object_get(o, "changes");
	if (json_array_size(arr) > 0)
		*rows = xcalloc(json_array_size(arr), sizeof(HubError));
	json_array_foreach(arr, i, e)
	{
		HubError   *he = &(*rows)[(*nrows)++];
		const char *op = jstr(e, "op");

		he->seq = jint(e, "seq");
		he->table = jdup(e, "table");
		he->op = op && op[0] ? op[0] : '?';
		he->pk = jdup(e, "pk");
		he->error = jdup(e, "error");
		he->first_failed = jdup(e, "first_failed");
		he->last_failed = jdup(e, "last_failed");
		he->attempts = (int) jint(e, "attempts");
	}
	if (conflicts)
		*conflicts = json_is_integer(json_object_get(o, "conflicts")) ? (long) jint(o, "conflicts") : -1;
	json_decref(o);
	return 0;
}

static void
http_abort(Link *l)
{
	HttpLink   *hl = (HttpLink *) l;

	/* nothing is held open on the hub between steps */
	buf_free(&hl->up);
}

static bool
http_ok(Link *l)
{
	return !((HttpLink *) l)->broken;
}

/* ---- wake-ups: the long poll ---------------------------------------------- */

static int
on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	HttpLink   *hl = arg;

	(void) a;
	(void) b;
	(void) c;
	(void) d;
	return __atomic_load_n(&hl->stop, __ATOMIC_RELAXED) ? 1 : 0;
}

static void
nap(HttpLink *hl, double s)
{
	for (double t = 0; t < s && !__atomic_load_n(&hl->stop, __ATOMIC_RELAXED); t += 0.1)
	{
		struct timespec ts = {0, 100000000};

		nanosleep(&ts, NULL);
	}
}

static void *
waiter_main(void *arg)
{
	HttpLink   *hl = arg;
	CURL	   *c = curl_easy_init();
	char		serve[32] = "";
	int64_t		changes = 0,
				requests = 0;
	double		backoff = 0.5;
	bool		failed = false;

	set_common(hl, c);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	while (!__atomic_load_n(&hl->stop, __ATOMIC_RELAXED))
	{
		Buf			url = {0},
					reply = {0};
		long		code = 0;
		json_t	   *o = NULL;
		CURLcode	rc;

		buf_printf(&url, "%s/api/sync/wait?serve=%s&changes=%" PRId64 "&requests=%" PRId64 "&node=%s",
				   hl->url, serve[0] ? serve : "-", changes, requests, hl->node_id);
		curl_easy_setopt(c, CURLOPT_URL, url.p);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
		rc = curl_easy_perform(c);
		buf_free(&url);
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200 && reply.p)
			o = json_loadb(reply.p, reply.len, 0, NULL);
		buf_free(&reply);
		if (o == NULL || jstr(o, "serve") == NULL)
		{
			json_decref(o);
			if (__atomic_load_n(&hl->stop, __ATOMIC_RELAXED))
				break;
			if (!failed)
				logmsg(LOG_DEBUG, "waiting for the hub's wake-ups at %s: %s", hl->url,
					   rc != CURLE_OK ? curl_easy_strerror(rc) : "a bad reply");
			failed = true;
			nap(hl, backoff);
			backoff = backoff * 2 > 30 ? 30 : backoff * 2;
			continue;
		}
		{
			const char *id = jstr(o, "serve"),
					   *wake = jstr(o, "wake");
			int64_t		ch = jint(o, "changes"),
						rq = jint(o, "requests");
			char		what = 0;

			if (serve[0] && strcmp(serve, id) != 0)
				what = 'c';		/* another serve: what it saw is unknown */
			else if (failed)
				what = 'c';		/* we were not listening for a while */
			else if (wake && strcmp(wake, "request") == 0)
				what = 'r';
			else if (wake)
				what = 'c';
			if (what && write(hl->pipe[1], &what, 1) < 0 && errno != EAGAIN)
				logmsg(LOG_DEBUG, "wake-up pipe: %s", strerror(errno));
			/*
			 * Until the loop has taken the wake-up (it does after a sync
			 * too), another one would only ask for the same sync: wait, so
			 * a busy hub costs one poll per sync, not one per commit.
			 */
			for (int i = 0; what && i < 400 && !__atomic_load_n(&hl->stop, __ATOMIC_RELAXED); i++)
			{
				int			unread = 0;
				struct timespec ts = {0, 5000000};

				/* at least WAKE_GAP_MS: the loop syncs no sooner anyway */
				if (i >= WAKE_GAP_MS / 5 &&
					(ioctl(hl->pipe[0], FIONREAD, &unread) < 0 || unread == 0))
					break;
				nanosleep(&ts, NULL);
			}
			snprintf(serve, sizeof(serve), "%s", id);
			changes = ch;
			requests = rq;
			failed = false;
			backoff = 0.5;
		}
		json_decref(o);
	}
	curl_easy_cleanup(c);
	return NULL;
}

static int
http_wake_fd(Link *l)
{
	HttpLink   *hl = (HttpLink *) l;

	return hl->listening ? hl->pipe[0] : -1;
}

static int
http_consume(Link *l, int *changes, int *requests, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	char		buf[64];
	ssize_t		n;

	(void) err;
	(void) errlen;
	if (!hl->listening)
		return 0;
	while ((n = read(hl->pipe[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
		{
			if (buf[i] == 'r')
				(*requests)++;
			else
				(*changes)++;
		}
	return 0;
}

static void
http_close(Link *l)
{
	HttpLink   *hl = (HttpLink *) l;

	if (hl->listening)
	{
		__atomic_store_n(&hl->stop, 1, __ATOMIC_RELAXED);
		pthread_join(hl->waiter, NULL);
		close(hl->pipe[0]);
		close(hl->pipe[1]);
	}
	free_tables(l);
	curl_easy_cleanup(hl->curl);
	curl_slist_free_all(hl->headers);
	free(hl->url);
	free(hl->user);
	free(hl->password);
	buf_free(&hl->up);
	free(hl->marks);
	free(hl->pos);
	free(hl->target);
	free(hl->table);
	free(hl->after_pk);
	free(hl);
}

static const LinkOps http_ops = {
	.hello = http_hello,
	.up_begin = http_up_begin,
	.up_chunk = http_up_chunk,
	.up_end = http_up_end,
	.down_begin = http_down_begin,
	.changes_open = http_changes_open,
	.changes_next = http_changes_next,
	.changes_close = http_nothing,
	.rows_open = http_rows_open,
	.rows_next = http_rows_next,
	.rows_close = http_nothing,
	.down_end = http_down_end,
	.errors = http_errors,
	.abort = http_abort,
	.ok = http_ok,
	.wake_fd = http_wake_fd,
	.consume = http_consume,
	.close = http_close,
};

/*
 * Make the link and say hello once, so that a wrong URL, certificate or
 * password shows at once. The node id is filled in by the first step.
 */
Link *
link_http_connect(const char *url, const char *client_id, bool listen, char *err, size_t errlen)
{
	UploadStats us;
	HttpLink   *hl = xcalloc(1, sizeof(HttpLink));
	const char *user = getenv("AMRS_ADMIN_USERNAME"),
			   *pw = getenv("AMRS_ADMIN_PASSWORD");
	size_t		n = strlen(url);
	const char *host = strstr(url, "://") + 3;
	size_t		hostlen = strcspn(host, "/?#");

	pthread_once(&curl_once, curl_init_once);
	while (n > 0 && url[n - 1] == '/')
		n--;
	hl->url = xmalloc(n + 1);
	memcpy(hl->url, url, n);
	hl->url[n] = '\0';
	if (memchr(host, '@', hostlen))
	{
		snprintf(err, errlen, "--online: put no credentials in the URL; set $AMRS_ADMIN_USERNAME and $AMRS_ADMIN_PASSWORD");
		free(hl->url);
		free(hl);
		return NULL;
	}
	hl->base.ops = &http_ops;
	hl->pipe[0] = hl->pipe[1] = -1;
	hl->user = user && *user ? xstrdup(user) : NULL;
	hl->password = pw ? xstrdup(pw) : NULL;
	hl->curl = curl_easy_init();
	hl->headers = curl_slist_append(NULL, "Content-Type: application/json");
	hl->headers = curl_slist_append(hl->headers, "Expect:");
	set_common(hl, hl->curl);
	snprintf(hl->base.where, sizeof(hl->base.where), "syncqd serve at %s", hl->url);
	if (http_hello(&hl->base, client_id, false, &us, err, errlen) < 0)
	{
		http_close(&hl->base);
		return NULL;
	}
	if (listen)
	{
		if (pipe2(hl->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		{
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			http_close(&hl->base);
			return NULL;
		}
		if (pthread_create(&hl->waiter, NULL, waiter_main, hl) != 0)
		{
			snprintf(err, errlen, "cannot start the wake-up thread");
			close(hl->pipe[0]);
			close(hl->pipe[1]);
			hl->pipe[0] = hl->pipe[1] = -1;
			http_close(&hl->base);
			return NULL;
		}
		hl->listening = true;
	}
	return &hl->base;
}
