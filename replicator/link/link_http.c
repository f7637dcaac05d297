/*
 * link_http.c — the hub reached through `syncqd serve` over HTTP(S), with
 * libcurl: a Link (link.h) whose every step is one POST /api/sync/data
 * (docs/http.md), its messages written and read by proto.c. The sync
 * model is sync/sync.c's, as over libpq.
 *
 * Credentials: $AMRS_ADMIN_USERNAME / $AMRS_ADMIN_PASSWORD, basic auth.
 * TLS is verified against the system's CAs, or --cacert's; there is no
 * switch to turn verification off. One connection is kept alive between
 * steps; replies may come gzip'd. With listen, a thread long-polls
 * GET /api/sync/wait and makes a pipe readable when the hub has news.
 *
 *   link_http_connect   make the link and say hello; the Link's steps are
 *                       the static http_* functions below; the long poll
 *                       is waiter_main
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

typedef struct HttpLink HttpLink;

/*
 * A page of changes or rows asked for (fetch_page), maybe on a thread of
 * its own while the page before it is applied (docs/http.md, the next
 * page fetched while one is applied).
 */
typedef struct
{
	ProtoOp		op;				/* OP_CHANGES or OP_ROWS */
	int64_t		after;			/* changes: after this seq */
	char	   *after_pk;		/* rows: after this key (NULL: from the start) */
	LinkPage	page;
	char	   *last;			/* rows: the key of the page's last row */
	int			rc;
	char		err[1024];
	/* as a prefetch */
	HttpLink   *hl;
	pthread_t	thread;
	bool		running;
} Fetch;

struct HttpLink
{
	Link		base;
	char	   *url;			/* the base URL, without a trailing / */
	CURL	   *curl;
	struct curl_slist *headers;
	char	   *user;
	char	   *password;
	bool		broken;			/* the link failed: make a new one */
	bool		gzip;			/* replies may come gzip'd (serve is not on loopback) */
	bool		old_protocol;	/* the last reply: serve speaks an older protocol */
	char		curl_err[CURL_ERROR_SIZE];
	char		node_id[NODE_ID_LEN + 1];
	/*
	 * A sync in two requests (docs/http.md): once a hello told the hub's
	 * tables and their digest, the next sync's hello goes with its first
	 * request (hello_due), and the position a download stored is told
	 * with the next snapshot request (untold: sent alone only when the
	 * link closes).
	 */
	bool		has_digest;
	uint64_t	tables_digest;
	bool		hello_due;
	bool		hello_retry;
	char	   *untold;
	/* upload in progress */
	Buf			up;				/* the body, written a page at a time */
	JsonOut		upw;
	ProtoUploaded uploaded;		/* the last upload's reply: its marks */
	/* download in progress */
	char	   *pos;
	char	   *target;
	int64_t		after;
	LinkPage	first;			/* the first page, come with the snapshot */
	char	   *first_pos;		/* ... of the changes from there */
	char	   *first_snap;		/* ... to there */
	bool		has_first;
	char	   *table;
	char	   *after_pk;
	Fetch		next;			/* the next page, asked for already */
	/* the wake-up thread */
	bool		listening;
	pthread_t	waiter;
	int			pipe[2];
	volatile int stop;
};

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
	/* gzip'd replies only where the bytes cost more than the CPU: not on
	 * this machine's loopback */
	if (hl->gzip)
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
 * POST body to /api/sync/data; the reply's body in *reply (200 only). -1
 * with err (serve's own error message when it sent one): a 409 marks the
 * link a clone's, an overtaken upload marks it overtaken, and a reply that
 * says serve or the way to it is in trouble marks it broken.
 */
static int
post(HttpLink *hl, const Buf *body, const char *what, Buf *reply, char *err, size_t errlen)
{
	Buf			url = {0};
	long		code = 0;
	CURLcode	rc;
	int64_t		t0;
	char		msg[1024];
	bool		overtaken = false;
	int			speaks;

	buf_reset(reply);
	buf_printf(&url, "%s/api/sync/data", hl->url);
	curl_easy_setopt(hl->curl, CURLOPT_URL, url.p);
	curl_easy_setopt(hl->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(hl->curl, CURLOPT_POSTFIELDS, body->p);
	curl_easy_setopt(hl->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body->len);
	curl_easy_setopt(hl->curl, CURLOPT_HTTPHEADER, hl->headers);
	curl_easy_setopt(hl->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(hl->curl, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(hl->curl, CURLOPT_TIMEOUT, (long) STEP_TIMEOUT_S);
	curl_easy_setopt(hl->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(hl->curl, CURLOPT_LOW_SPEED_TIME, (long) STALL_S);
	curl_easy_setopt(hl->curl, CURLOPT_ERRORBUFFER, hl->curl_err);
	hl->curl_err[0] = '\0';
	t0 = mono_us();
	rc = curl_easy_perform(hl->curl);
	buf_free(&url);
	logmsg(LOG_DEBUG, "serve: %s: %zu bytes sent, %zu received in %.1f ms", what, body->len,
		   reply->len, (double) (mono_us() - t0) / 1e3);
	if (rc != CURLE_OK)
	{
		hl->broken = true;
		snprintf(err, errlen, "serve %s: %s: %s", hl->url, what,
				 hl->curl_err[0] ? hl->curl_err : curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(hl->curl, CURLINFO_RESPONSE_CODE, &code);
	hl->old_protocol = false;
	if (code == 200)
		return 0;
	if (proto_decode_error(reply->p ? reply->p : "", reply->len, msg, sizeof(msg), &overtaken) < 0)
		msg[0] = '\0';
	/* serve speaks an older protocol (syncq 0.1.0's says so in these words) */
	if (code == 400 && sscanf(msg, "protocol version %*d is not spoken here (this serve speaks %d)", &speaks) == 1 &&
		speaks < PROTO_VERSION)
		hl->old_protocol = true;
	if (code == 401)
		snprintf(err, errlen, "serve %s refused the credentials (401): check $AMRS_ADMIN_USERNAME and $AMRS_ADMIN_PASSWORD",
				 hl->url);
	else if (code == 409)
	{
		hl->base.clone = true;
		snprintf(err, errlen, "%s", msg[0] ? msg : "serve: 409 Conflict");
	}
	else
		snprintf(err, errlen, "serve %s: %s: HTTP %ld: %s", hl->url, what, code,
				 msg[0] ? msg : "(no message)");
	if (overtaken)
		hl->base.overtaken = true;
	else if (code >= 500 || code == 408 || code == 429)
		hl->broken = true;
	return -1;
}

/*
 * One step: the request rq, posted; its reply's body in *reply. -1 with
 * err.
 */
static int
step(HttpLink *hl, const ProtoRequest *rq, Buf *reply, char *err, size_t errlen)
{
	Buf			body = {0};
	int			rc;

	proto_encode_request(rq, &body);
	rc = post(hl, &body, proto_op_name(rq->op), reply, err, errlen);
	buf_free(&body);
	return rc;
}

/* A request of op for this link's node. */
static ProtoRequest
request(HttpLink *hl, ProtoOp op)
{
	ProtoRequest rq = {.op = op};

	memcpy(rq.node_id, hl->node_id, sizeof(rq.node_id));
	return rq;
}

/* A reply that does not read: err says which step, and the link is broken. */
static int
bad_reply(HttpLink *hl, const char *what, const char *why, char *err, size_t errlen)
{
	hl->broken = true;
	snprintf(err, errlen, "serve %s: %s: %s", hl->url, what, why);
	return -1;
}

/*
 * Is release a (X.Y.Z) older than b? An empty or unreadable one is older
 * than any: syncq 0.1.0's serve did not say its release.
 */
static bool
release_older(const char *a, const char *b)
{
	int			x[3] = {0},
				y[3] = {0};

	if (sscanf(a, "%d.%d.%d", &x[0], &x[1], &x[2]) != 3 ||
		sscanf(b, "%d.%d.%d", &y[0], &y[1], &y[2]) != 3)
		return true;
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i];
	return false;
}

/* err: serve runs an older syncq than this syncqd (release "" if unsaid). */
static int
serve_too_old(HttpLink *hl, const char *release, char *err, size_t errlen)
{
	snprintf(err, errlen, "serve %s runs syncq %s, older than this syncqd (%s): upgrade syncqd serve there "
			 "(and run ALTER EXTENSION syncq UPDATE on its hub)",
			 hl->url, release[0] ? release : "0.1.0 or older", SYNCQD_VERSION);
	return -1;
}

static void
free_tables(Link *l)
{
	hub_tables_free(l->tables, l->ntables);
	l->tables = NULL;
	l->ntables = 0;
}

/* What a hello answered: the hub's node id, its tables and their digest. */
static void
take_hello(HttpLink *hl, ProtoHello *r)
{
	snprintf(hl->base.hub_node_id, sizeof(hl->base.hub_node_id), "%s", r->hub_node_id);
	free_tables(&hl->base);
	hl->base.tables = r->tables;
	hl->base.ntables = r->ntables;
	r->tables = NULL;
	r->ntables = 0;
	hl->has_digest = r->has_digest;
	hl->tables_digest = r->digest;
}

static int	bad_reply(HttpLink *hl, const char *what, const char *why, char *err, size_t errlen);
static void settle(HttpLink *hl);

static int
http_hello(Link *l, const char *client_id, bool retry_errors, UploadStats *retried,
		   char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	ProtoRequest rq;
	ProtoHello	r;
	Buf			reply = {0};
	char		why[512];
	int			rc;

	settle(hl);
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	memset(retried, 0, sizeof(*retried));
	if (hl->has_digest && !hl->broken)
	{
		/* the tables are known: the hello goes with the next request */
		hl->hello_due = true;
		hl->hello_retry = retry_errors;
		return 0;
	}
	rq = request(hl, OP_HELLO);
	rq.retry_errors = retry_errors;
	rc = step(hl, &rq, &reply, err, errlen);
	if (rc < 0 && hl->old_protocol)
		rc = serve_too_old(hl, "", err, errlen);
	else if (rc == 0 && proto_decode_hello(reply.p, reply.len, &r, why, sizeof(why)) < 0)
		rc = bad_reply(hl, "hello", why, err, errlen);
	else if (rc == 0 && release_older(r.release, SYNCQD_VERSION))
	{
		/* its hub code lacks what this syncqd needs */
		rc = serve_too_old(hl, r.release, err, errlen);
		proto_hello_free(&r);
	}
	buf_free(&reply);
	if (rc < 0)
		return -1;
	take_hello(hl, &r);
	retried->retried = r.retried;
	retried->conflicts = r.conflicts;
	return 0;
}

/* The ask for a hello folded into the request about to go (NULL: none). */
static const ProtoHelloAsk *
hello_ask(HttpLink *hl, ProtoHelloAsk *ask)
{
	ask->on = hl->hello_due;
	ask->tables = hl->tables_digest;
	return hl->hello_due ? ask : NULL;
}

/*
 * What a reply says of the hello folded into its request. The hub's
 * tables were other than the link's: the link takes them, and the sync
 * starts again (-1, l->tables_changed). -1 also for a reply that is not
 * an object.
 */
static int
hello_answered(HttpLink *hl, const Buf *reply, const char *what, char *err, size_t errlen)
{
	ProtoFolded f;
	ProtoHello	r;
	char		why[512];

	if (!hl->hello_due)
		return 0;
	if (proto_decode_folded(reply->p, reply->len, &f) < 0)
		return bad_reply(hl, what, "the reply is not a JSON object", err, errlen);
	if (f.tables_changed)
	{
		if (proto_decode_hello(reply->p, reply->len, &r, why, sizeof(why)) < 0)
			return bad_reply(hl, what, why, err, errlen);
		take_hello(hl, &r);
		hl->base.tables_changed = true;
		snprintf(err, errlen, "serve %s: the hub's tracked tables changed: syncing again", hl->url);
		return -1;
	}
	if (!f.on)
		return bad_reply(hl, what, "the reply does not answer the hello that came with the request",
						 err, errlen);
	hl->hello_due = false;
	hl->base.late_retried.retried += f.retried;
	hl->base.late_retried.conflicts += f.conflicts;
	return 0;
}

static int
http_up_begin(Link *l, const char *client_id, int64_t ack_seq, uint64_t ack_digest,
			  int64_t now, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	settle(hl);
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	l->clone = false;
	l->overtaken = false;
	l->nmarks = 0;
	l->nrenames = 0;
	l->nmet = 0;
	buf_reset(&hl->up);
	proto_upload_begin(&hl->upw, &hl->up, hl->node_id, ack_seq, now, ack_digest,
					   hello_ask(hl, &(ProtoHelloAsk) {0}), hl->hello_retry);
	return 0;
}

static int
http_up_chunk(Link *l, const ChangeList *page, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	for (int i = 0; i < page->n; i++)
		proto_upload_change(&hl->upw, &page->c[i]);
	return 0;
}

static int
http_up_end(Link *l, UploadStats *st, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	ProtoUploaded *r = &hl->uploaded;
	Buf			reply = {0};
	char		why[512];
	int			rc;

	proto_upload_end(&hl->upw);
	rc = post(hl, &hl->up, "upload", &reply, err, errlen);
	buf_free(&hl->up);
	st->clone = l->clone;
	proto_uploaded_free(r);
	l->marks = NULL;
	l->nmarks = 0;
	l->renames = NULL;
	l->nrenames = 0;
	l->met = NULL;
	l->nmet = 0;
	if (rc == 0)
		rc = hello_answered(hl, &reply, "upload", err, errlen);
	if (rc == 0 && proto_decode_uploaded(reply.p, reply.len, r, why, sizeof(why)) < 0)
		rc = bad_reply(hl, "upload", why, err, errlen);
	buf_free(&reply);
	if (rc < 0)
		return -1;
	st->applied = r->st.applied;
	st->conflicts = r->st.conflicts;
	st->skipped = r->st.skipped;
	st->parked = r->st.parked;
	l->marks = r->marks;
	l->nmarks = r->nmarks;
	l->renames = r->renames;
	l->nrenames = r->nrenames;
	l->met = r->met;
	l->nmet = r->nmet;
	/* what the hub set aside, as serve logged it */
	for (int i = 0; i < r->nrefused; i++)
		logmsg(LOG_WARNING, "%s", r->refused[i]);
	if (r->refused_more > 0)
		logmsg(LOG_WARNING, "%d more changes set aside in the hub's sync_errors", r->refused_more);
	return 0;
}

/* Forget a first page not taken. */
static void
drop_first(HttpLink *hl)
{
	link_page_free(&hl->first);
	free(hl->first_pos);
	free(hl->first_snap);
	hl->first_pos = hl->first_snap = NULL;
	hl->has_first = false;
}

static int
http_down_begin(Link *l, const char *position, char **snapshot, bool *behind,
				char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	ProtoRequest rq = request(hl, OP_SNAPSHOT);
	Buf			reply = {0};
	char		why[512];
	int			rc;

	settle(hl);
	*snapshot = NULL;
	rq.position = (char *) position;
	/* the first page of the changes from there, if that is what follows */
	rq.limit = position ? PAGE_ROWS : 0;
	if (hello_ask(hl, &rq.hello))
		rq.retry_errors = hl->hello_retry;
	drop_first(hl);
	l->hub_clock_us = 0;
	l->hub_wall_us = 0;
	rc = step(hl, &rq, &reply, err, errlen);
	if (rc == 0)
		rc = hello_answered(hl, &reply, "snapshot", err, errlen);
	if (rc == 0 && proto_decode_snapshot_page(reply.p, reply.len, snapshot, behind, &l->hub_clock_us,
											  &l->hub_wall_us, &hl->first, &hl->has_first,
											  why, sizeof(why)) < 0)
		rc = bad_reply(hl, "snapshot", why, err, errlen);
	buf_free(&reply);
	if (rc == 0 && hl->has_first)
	{
		hl->first_pos = xstrdup(position);
		hl->first_snap = xstrdup(*snapshot);
	}
	/* the position is told (serve noted it) */
	if (rc == 0 && hl->untold && position && strcmp(hl->untold, position) == 0)
	{
		free(hl->untold);
		hl->untold = NULL;
	}
	return rc;
}

/* ---- pages, the next one asked for while one is applied -------------------- */

static void
fetch_free(Fetch *f)
{
	link_page_free(&f->page);
	free(f->after_pk);
	free(f->last);
	f->after_pk = f->last = NULL;
}

/*
 * Ask for the page f says, after f->after (changes, of the download
 * hl->pos to hl->target) or f->after_pk (rows of hl->table); into f->page,
 * f->rc, f->err. On the prefetch thread it is the only one using the link
 * (settle).
 */
static void
fetch_page(HttpLink *hl, Fetch *f)
{
	ProtoRequest rq = request(hl, f->op);
	Buf			reply = {0};
	char		why[512];
	const char *what = proto_op_name(f->op);

	link_page_reset(&f->page);
	f->err[0] = '\0';
	rq.limit = PAGE_ROWS;
	if (f->op == OP_CHANGES)
	{
		rq.position = hl->pos;
		rq.target = hl->target;
		rq.after = f->after;
	}
	else
	{
		rq.table = hl->table;
		rq.after_pk = f->after_pk;
	}
	f->rc = step(hl, &rq, &reply, f->err, sizeof(f->err));
	if (f->rc == 0 &&
		(f->op == OP_CHANGES ?
		 proto_decode_changes(reply.p, reply.len, f->after, &f->page, why, sizeof(why)) :
		 proto_decode_rows(reply.p, reply.len, &f->page, &f->last, why, sizeof(why))) < 0)
		f->rc = bad_reply(hl, what, why, f->err, sizeof(f->err));
	buf_free(&reply);
}

static void *
prefetch_main(void *arg)
{
	Fetch	   *f = arg;

	fetch_page(f->hl, f);
	return NULL;
}

/* The prefetch, if one runs, waited for. */
static void
prefetch_join(HttpLink *hl)
{
	if (hl->next.running)
	{
		pthread_join(hl->next.thread, NULL);
		hl->next.running = false;
	}
}

/* Nothing asked for in advance any more: the link is free for a step. */
static void
settle(HttpLink *hl)
{
	prefetch_join(hl);
	fetch_free(&hl->next);
	hl->next.op = OP_HELLO;
}

/*
 * The page after the one just handed down (more), asked for now on a
 * thread of its own: the client applies the one while the next comes.
 * Without a thread, it is asked for when needed.
 */
static void
prefetch(HttpLink *hl, ProtoOp op, int64_t after, const char *after_pk)
{
	Fetch	   *f = &hl->next;

	settle(hl);
	f->op = op;
	f->after = after;
	f->after_pk = after_pk ? xstrdup(after_pk) : NULL;
	f->hl = hl;
	if (pthread_create(&f->thread, NULL, prefetch_main, f) == 0)
		f->running = true;
	else
		settle(hl);
}

/*
 * The page of op after after / after_pk into p (*last: a rows page's last
 * key): the one asked for in advance if it is that one, else asked for
 * now. The next is asked for in advance if more follow. -1 with err.
 */
static int
next_page(HttpLink *hl, ProtoOp op, int64_t after, const char *after_pk, LinkPage *p,
		  char **last, char *err, size_t errlen)
{
	Fetch	   *f = &hl->next;
	Fetch		now = {.op = op, .after = after};
	bool		ahead;

	prefetch_join(hl);
	ahead = f->op == op && (op == OP_CHANGES ? f->after == after :
							(f->after_pk == NULL) == (after_pk == NULL) &&
							(after_pk == NULL || strcmp(f->after_pk, after_pk) == 0));
	if (!ahead)
	{
		settle(hl);
		now.after_pk = after_pk ? xstrdup(after_pk) : NULL;
		fetch_page(hl, &now);
		f = &now;
	}
	if (f->rc < 0)
	{
		snprintf(err, errlen, "%s", f->err);
		if (ahead)
			settle(hl);
		else
			fetch_free(f);
		return -1;
	}
	link_page_free(p);
	*p = f->page;
	memset(&f->page, 0, sizeof(f->page));
	*last = f->last;
	f->last = NULL;
	if (ahead)
		settle(hl);
	else
		fetch_free(f);
	if (p->more)
	{
		if (op == OP_CHANGES)
			prefetch(hl, op, p->changes.n > 0 ? p->changes.c[p->changes.n - 1].seq : after, NULL);
		else if (*last)
			prefetch(hl, op, 0, *last);
	}
	return 0;
}

static int
http_changes_open(Link *l, const char *position, const char *target, int64_t done,
				  const char *client_id, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	settle(hl);
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	free(hl->pos);
	free(hl->target);
	hl->pos = xstrdup(position);
	hl->target = xstrdup(target);
	hl->after = done;
	return 0;
}

static int
http_changes_next(Link *l, LinkPage *p, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	char	   *last = NULL;

	link_page_reset(p);
	if (hl->has_first)
	{
		/* the first page came with the snapshot: the one asked for now? */
		bool		mine = hl->after == 0 && strcmp(hl->first_pos, hl->pos) == 0 &&
			strcmp(hl->first_snap, hl->target) == 0;

		if (mine)
		{
			LinkPage	t = *p;

			*p = hl->first;
			hl->first = t;
		}
		drop_first(hl);
		if (mine)
		{
			if (p->changes.n > 0)
				hl->after = p->changes.c[p->changes.n - 1].seq;
			if (p->more)
				prefetch(hl, OP_CHANGES, hl->after, NULL);
			return 0;
		}
	}
	if (next_page(hl, OP_CHANGES, hl->after, NULL, p, &last, err, errlen) < 0)
		return -1;
	free(last);
	if (p->changes.n > 0)
		hl->after = p->changes.c[p->changes.n - 1].seq;
	return 0;
}

/* changes_close, rows_close: a page asked for in advance is not wanted. */
static int
http_settle(Link *l, char *err, size_t errlen)
{
	(void) err;
	(void) errlen;
	settle((HttpLink *) l);
	return 0;
}

static int
http_rows_open(Link *l, const HubTable *t, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	(void) err;
	(void) errlen;
	settle(hl);
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
	char	   *last = NULL;

	link_page_reset(p);
	if (next_page(hl, OP_ROWS, 0, hl->after_pk, p, &last, err, errlen) < 0)
		return -1;
	free(hl->after_pk);
	hl->after_pk = last;
	return 0;
}

static int
http_down_end(Link *l, const char *client_id, const char *stored, long *pruned,
			  char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	ProtoRequest rq;
	Buf			reply = {0};
	char		why[512];
	int			rc;

	settle(hl);
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	*pruned = 0;
	if (stored == NULL)
		return 0;
	if (hl->untold && strcmp(hl->untold, stored) == 0)
		return 0;
	if (!hl->has_digest)
	{
		/* a serve that answers no folded hello may note no position either */
		rq = request(hl, OP_DONE);
		rq.position = (char *) stored;
		rc = step(hl, &rq, &reply, err, errlen);
		if (rc == 0 && proto_decode_done(reply.p, reply.len, pruned, why, sizeof(why)) < 0)
			rc = bad_reply(hl, "done", why, err, errlen);
		buf_free(&reply);
		return rc;
	}
	/* told with the next snapshot request, or as the link closes */
	free(hl->untold);
	hl->untold = xstrdup(stored);
	return 0;
}

/* The position not told yet, told now (the link closes): a failure is
 * only logged, the next sync tells it. */
static void
tell_position(HttpLink *hl)
{
	ProtoRequest rq;
	Buf			reply = {0};
	char		err[1024];
	long		pruned = 0;

	if (hl->untold == NULL || hl->broken || hl->node_id[0] == '\0')
		return;
	rq = request(hl, OP_DONE);
	rq.position = hl->untold;
	if (step(hl, &rq, &reply, err, sizeof(err)) < 0 ||
		proto_decode_done(reply.p, reply.len, &pruned, err, sizeof(err)) < 0)
		logmsg(LOG_DEBUG, "serve %s: telling the position this client stands at: %s", hl->url, err);
	else if (pruned > 0)
		logmsg(LOG_INFO, "pruned %ld hub queue rows every active client has", pruned);
	buf_free(&reply);
}

/* One errors request, its answer decoded into *r. */
static int
errors_step(HttpLink *hl, ProtoRequest *rq, ProtoErrors *r, char *err, size_t errlen)
{
	Buf			reply = {0};
	char		why[512];
	int			rc = step(hl, rq, &reply, err, errlen);

	if (rc == 0 && proto_decode_errors(reply.p, reply.len, r, why, sizeof(why)) < 0)
		rc = bad_reply(hl, "errors", why, err, errlen);
	buf_free(&reply);
	return rc;
}

static int
http_errors(Link *l, const char *client_id, int max, long *count, HubError **rows, int *nrows,
			long *conflicts, char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;
	ProtoRequest rq;
	ProtoErrors r;

	*rows = NULL;
	*nrows = 0;
	settle(hl);
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	rq = request(hl, OP_ERRORS);
	rq.max = max;
	rq.conflicts = conflicts != NULL;
	if (errors_step(hl, &rq, &r, err, errlen) < 0)
		return -1;
	*count = r.count;
	*rows = r.rows;
	*nrows = r.nrows;
	if (conflicts)
		*conflicts = r.conflicts;
	return 0;
}

/* Which of seqs the hub holds set aside still: errors requests naming
 * them, PROTO_ERRORS_MAX at a time, each answered with those held. */
static int
http_held(Link *l, const char *client_id, const int64_t *seqs, int n, bool *held,
		  char *err, size_t errlen)
{
	HttpLink   *hl = (HttpLink *) l;

	settle(hl);
	snprintf(hl->node_id, sizeof(hl->node_id), "%s", client_id);
	for (int from = 0; from < n; from += PROTO_ERRORS_MAX)
	{
		ProtoRequest rq = request(hl, OP_ERRORS);
		ProtoErrors r;
		int			k = n - from < PROTO_ERRORS_MAX ? n - from : PROTO_ERRORS_MAX;
		int			rc = 0;

		rq.max = k;
		rq.seqs = (int64_t *) (seqs + from);
		rq.nseqs = k;
		if (errors_step(hl, &rq, &r, err, errlen) < 0)
			return -1;
		/*
		 * (a serve that lists the first max changes whatever seqs says
		 * answers with others: then nothing is known)
		 */
		if (hub_errors_held(r.rows, r.nrows, seqs + from, k, held + from) != r.nrows)
		{
			snprintf(err, errlen, "serve %s: errors: its answer lists changes not among the seqs asked for (a serve older than this syncqd?)",
					 hl->url);
			rc = -1;
		}
		hub_errors_free(r.rows, r.nrows);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void
http_abort(Link *l)
{
	HttpLink   *hl = (HttpLink *) l;

	/* nothing is held open on the hub between steps */
	settle(hl);
	buf_free(&hl->up);
}

static bool
http_ok(Link *l)
{
	return !((HttpLink *) l)->broken;
}

/* ---- wake-ups: the long poll ---------------------------------------------- */

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

/* One GET /api/sync/wait after the counts in *last; its answer in *got. */
static int
wait_once(HttpLink *hl, CURL *c, const ProtoWait *last, ProtoWait *got, CURLcode *rc)
{
	Buf			url = {0},
				reply = {0};
	long		code = 0;
	char		why[256];
	int			ok = -1;

	buf_printf(&url, "%s/api/sync/wait?serve=%s&changes=%" PRId64 "&requests=%" PRId64 "&node=%s",
			   hl->url, last->serve[0] ? last->serve : "-", last->changes, last->requests, hl->node_id);
	curl_easy_setopt(c, CURLOPT_URL, url.p);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
	*rc = curl_easy_perform(c);
	buf_free(&url);
	if (*rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200 && reply.p)
		ok = proto_decode_wait(reply.p, reply.len, got, why, sizeof(why));
	buf_free(&reply);
	return ok;
}

/*
 * Tell the loop (the pipe): 'c' for changes, 'r' for a sync request. Until
 * the loop has taken it (it does after a sync too), another wake-up would
 * only ask for the same sync: wait, so a busy hub costs one poll per sync,
 * not one per commit.
 */
static void
tell_loop(HttpLink *hl, char what)
{
	if (write(hl->pipe[1], &what, 1) < 0 && errno != EAGAIN)
		logmsg(LOG_DEBUG, "wake-up pipe: %s", strerror(errno));
	for (int i = 0; i < 400 && !__atomic_load_n(&hl->stop, __ATOMIC_RELAXED); i++)
	{
		int			unread = 0;
		struct timespec ts = {0, 5000000};

		/* at least WAKE_GAP_MS: the loop syncs no sooner anyway */
		if (i >= WAKE_GAP_MS / 5 &&
			(ioctl(hl->pipe[0], FIONREAD, &unread) < 0 || unread == 0))
			break;
		nanosleep(&ts, NULL);
	}
}

/* The long poll, on a thread of its own until the link closes. */
static void *
waiter_main(void *arg)
{
	HttpLink   *hl = arg;
	CURL	   *c = curl_easy_init();
	ProtoWait	last = {0},
				got;
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
		CURLcode	rc;
		char		what = 0;

		if (wait_once(hl, c, &last, &got, &rc) < 0)
		{
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
		if (last.serve[0] && strcmp(last.serve, got.serve) != 0)
			what = 'c';			/* another serve: what it saw is unknown */
		else if (failed)
			what = 'c';			/* we were not listening for a while */
		else if (strcmp(got.wake, SYNCQ_PAYLOAD_REQUEST) == 0)
			what = 'r';
		else if (got.wake[0])
			what = 'c';
		if (what)
			tell_loop(hl, what);
		last = got;
		failed = false;
		backoff = 0.5;
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

	settle(hl);
	tell_position(hl);
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
	proto_uploaded_free(&hl->uploaded);
	free(hl->pos);
	free(hl->target);
	free(hl->table);
	free(hl->after_pk);
	free(hl->untold);
	drop_first(hl);
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
	.changes_close = http_settle,
	.rows_open = http_rows_open,
	.rows_next = http_rows_next,
	.rows_close = http_settle,
	.down_end = http_down_end,
	.errors = http_errors,
	.held = http_held,
	.abort = http_abort,
	.ok = http_ok,
	.wake_fd = http_wake_fd,
	.consume = http_consume,
	.close = http_close,
};

/* Is host[0..n) (of a URL, with its port) this machine's loopback? */
static bool
loopback_host(const char *host, size_t n)
{
	size_t		len = n;

	if (n > 0 && host[0] == '[')
		return n >= 5 && strncmp(host, "[::1]", 5) == 0;
	for (size_t i = 0; i < n; i++)
		if (host[i] == ':')
			len = i;
	return (len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
		(len > 4 && strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") >= len);
}

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
	if (user && *user && strncasecmp(url, "http://", 7) == 0 && !loopback_host(host, hostlen))
	{
		static bool warned;

		if (!warned)
			logmsg(LOG_WARNING, "--online is http://, not https://: the password of $AMRS_ADMIN_USERNAME goes to %.*s in clear text with every request (use https://, or a TLS proxy on that host)",
				   (int) hostlen, host);
		warned = true;
	}
	hl->base.ops = &http_ops;
	hl->gzip = !loopback_host(host, hostlen);
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

