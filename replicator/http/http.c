/*
 * http.c — the one libmicrohttpd layer of syncqd (http.h).
 *
 *   http_hostport_parse   HOST:PORT into its parts
 *   http_start            listen on HOST:PORT (TLS if given a certificate),
 *                         so many connections per address at most (logged),
 *                         each request's headers and body on time (logged)
 *   http_stop             stop
 *   http_client_address   who is on a connection
 *   http_set_timeout      how long a connection may stay idle
 *   http_reply            a reply of bytes (gzip'd when long and accepted)
 *   http_reply_static     ... of bytes that stay
 *   http_reply_json       ... of a jansson document
 *   http_reply_buf        ... of JSON text
 *   http_reply_error      {"error": ..., "status": ...}
 *   http_reply_method     405 with Allow
 *   http_reply_preflight  204 answering a CORS preflight of the trigger
 *   http_reply_too_soon   429 with Retry-After, for the trigger
 *   http_rate_take        the trigger's rate limit
 *   http_jtext            a JSON string of any bytes
 *   log_mhd               libmicrohttpd's messages, to the log
 *
 * on_request gathers a request (headers, then body up to max_body) and
 * hands it to the server's handler; on_completed frees it.
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zlib.h>

/* Replies shorter than this go plain. */
#define GZIP_MIN 1024

/* TLS 1.2 and later only. */
#define TLS_PRIORITIES "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-SSL3.0"

/* ---- HOST:PORT ------------------------------------------------------------ */

int
http_hostport_parse(const char *hostport, char *host, size_t hostlen, char *port, size_t portlen,
					char *err, size_t errlen)
{
	const char *colon = strrchr(hostport, ':');
	const char *h = hostport;
	size_t		hl;
	char	   *end;
	long		p;

	if (colon == NULL || colon[1] == '\0')
	{
		snprintf(err, errlen, "give HOST:PORT");
		return -1;
	}
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535)
	{
		snprintf(err, errlen, "the port must be a number from 0 to 65535");
		return -1;
	}
	hl = (size_t) (colon - hostport);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
	{
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hostlen)
	{
		snprintf(err, errlen, "give HOST:PORT");
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, portlen, "%ld", p);
	return 0;
}

/* Resolve HOST:PORT to one address to listen on. */
static int
resolve(const char *hostport, struct addrinfo **ai, char *err, size_t errlen)
{
	char		host[256],
				port[16],
				why[128];
	struct addrinfo hints = {0};
	int			rc;

	if (http_hostport_parse(hostport, host, sizeof(host), port, sizeof(port), why, sizeof(why)) < 0)
	{
		snprintf(err, errlen, "invalid address \"%s\": %s", hostport, why);
		return -1;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, ai);
	if (rc != 0)
	{
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- the time limits on a request ------------------------------------------ */

/*
 * libmicrohttpd closes a connection after timeout_s of silence, but one
 * that sends a byte now and then is never silent: it could hold its
 * connection (and, before it signs in, a place of its address's
 * PER_ADDRESS) for ever without sending one whole request (slowloris).
 * So each open connection is listed with where it is in its request and
 * since when, and a watchdog thread looks at the list every second:
 *
 *   waiting for headers  (from its start, TLS handshake included, or its
 *                        last reply) longer than header_s (plus the idle
 *                        timeout http_set_timeout gave it);
 *   reading the body     for longer than body_s + the bytes so far /
 *                        body_min_rate (mod_reqtimeout's MinRate)
 *
 * and the connection is shut down (shutdown(2): libmicrohttpd sees its
 * end and closes it as its own). While the handler runs and the reply is
 * sent there is no limit here. The list is changed, and a socket shut
 * down, only under its mutex; libmicrohttpd says a connection closed
 * (on_connection) before it closes its socket, so the watchdog never
 * touches another's. What it closed is logged once a sweep per address.
 */
typedef enum
{
	CONN_HEADERS,				/* waiting for a request's headers */
	CONN_BODY,					/* reading its body */
	CONN_BUSY					/* the handler and the reply */
} ConnPhase;

typedef struct HttpConn
{
	struct HttpConns *list;		/* the list it is on, NULL: none */
	struct HttpConn *prev,
			   *next;
	int			addr_slot;		/* its place in srv->addrs, -1: none */
	int			fd;
	char		addr[INET6_ADDRSTRLEN];
	ConnPhase	phase;
	int64_t		since_us;		/* mono_us() the phase began */
	uint64_t	body_bytes;		/* of the body so far */
	unsigned int idle_s;		/* http_set_timeout's, added to header_s */
	bool		cut;			/* shut down by the watchdog */
} HttpConn;

struct HttpConns
{
	pthread_mutex_t mu;
	pthread_cond_t cv;
	HttpConn   *head;
	bool		stop;
	pthread_t	watchdog;
};

/* The connection's entry (on_connection made it), or NULL. */
static HttpConn *
conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/*
 * conn's request moves on: to phase (from its start, or its last reply);
 * or, in the body, bytes more of it arrived.
 */
static void
conn_phase(HttpServer *srv, struct MHD_Connection *conn, ConnPhase phase, size_t bytes)
{
	HttpConn   *c;

	if (srv->conns == NULL || (c = conn_of(conn)) == NULL)
		return;
	pthread_mutex_lock(&srv->conns->mu);
	if (c->phase != phase)
	{
		c->phase = phase;
		c->since_us = mono_us();
		c->body_bytes = 0;
	}
	c->body_bytes += bytes;
	pthread_mutex_unlock(&srv->conns->mu);
}

/* What one sweep closed of one address, for the log. */
typedef struct
{
	char		addr[INET6_ADDRSTRLEN];
	int			headers;
	int			body;
} CutNote;

#define CUT_NOTES 16

/* Has c overrun its phase's limit at now? */
static bool
conn_late(const HttpServer *srv, const HttpConn *c, int64_t now)
{
	int64_t		limit_us;

	if (c->phase == CONN_HEADERS && srv->header_s)
		limit_us = ((int64_t) srv->header_s + c->idle_s) * 1000000;
	else if (c->phase == CONN_BODY && srv->body_s)
		limit_us = (int64_t) srv->body_s * 1000000 +
			(srv->body_min_rate ? (int64_t) (c->body_bytes * 1000000 / srv->body_min_rate) : INT64_MAX / 2);
	else
		return false;
	return now - c->since_us > limit_us;
}

/* One look at every connection: shut down the late ones, noted in cut. */
static int
sweep(HttpServer *srv, CutNote *cut, int *more)
{
	int			n = 0;
	int64_t		now = mono_us();

	for (HttpConn *c = srv->conns->head; c; c = c->next)
	{
		int			k;

		if (c->cut || !conn_late(srv, c, now))
			continue;
		c->cut = true;
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		for (k = 0; k < n && strcmp(cut[k].addr, c->addr) != 0; k++)
			;
		if (k == n && n == CUT_NOTES)
		{
			(*more)++;
			continue;
		}
		if (k == n)
		{
			memset(&cut[n], 0, sizeof(cut[n]));
			snprintf(cut[n].addr, sizeof(cut[n].addr), "%s", c->addr);
			n++;
		}
		if (c->phase == CONN_HEADERS)
			cut[k].headers++;
		else
			cut[k].body++;
	}
	return n;
}

static void *
watchdog_main(void *arg)
{
	HttpServer *srv = arg;
	struct HttpConns *cs = srv->conns;

	pthread_mutex_lock(&cs->mu);
	while (!cs->stop)
	{
		CutNote		cut[CUT_NOTES];
		int			more = 0;
		int			n = sweep(srv, cut, &more);
		struct timespec until;

		pthread_mutex_unlock(&cs->mu);
		for (int k = 0; k < n; k++)
		{
			if (cut[k].headers)
				logmsg(LOG_WARNING, "%s: closed %d connection%s of %s that sent no whole request headers within %u s of connecting or of their last reply",
					   srv->name, cut[k].headers, cut[k].headers == 1 ? "" : "s", cut[k].addr, srv->header_s);
			if (cut[k].body)
				logmsg(LOG_WARNING, "%s: closed %d connection%s of %s whose request body came slower than %u bytes/s (after %u s)",
					   srv->name, cut[k].body, cut[k].body == 1 ? "" : "s", cut[k].addr, srv->body_min_rate, srv->body_s);
		}
		if (more)
			logmsg(LOG_WARNING, "%s: closed %d more late connections of other addresses", srv->name, more);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&cs->mu);
		if (!cs->stop)
			pthread_cond_timedwait(&cs->cv, &cs->mu, &until);
	}
	pthread_mutex_unlock(&cs->mu);
	return NULL;
}

static int
watchdog_start(HttpServer *srv)
{
	struct HttpConns *cs = xcalloc(1, sizeof(struct HttpConns));
	int			rc;
	sigset_t	block,
				orig;

	pthread_mutex_init(&cs->mu, NULL);
	pthread_cond_init(&cs->cv, NULL);
	srv->conns = cs;
	/*
	 * Created with the stop signals blocked, as the server's threads are:
	 * the caller waits for them in sigsuspend(), and one taken by this
	 * thread would leave it waiting.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &orig);
	rc = pthread_create(&cs->watchdog, NULL, watchdog_main, srv);
	pthread_sigmask(SIG_SETMASK, &orig, NULL);
	if (rc != 0)
	{
		pthread_cond_destroy(&cs->cv);
		pthread_mutex_destroy(&cs->mu);
		free(cs);
		srv->conns = NULL;
	}
	return rc;
}

/* Stop the watchdog (before the server: its connections stay listed). */
static void
watchdog_stop(HttpServer *srv)
{
	struct HttpConns *cs = srv->conns;

	if (cs == NULL)
		return;
	pthread_mutex_lock(&cs->mu);
	cs->stop = true;
	pthread_cond_signal(&cs->cv);
	pthread_mutex_unlock(&cs->mu);
	pthread_join(cs->watchdog, NULL);
}

/* ---- a request, as it arrives ---------------------------------------------- */

/* A request whose body was this large gives the memory back when done. */
#define TRIM_AFTER_BODY (1024 * 1024)

/* malloc_trim() belongs to glibc's allocator. Under AddressSanitizer, whose
 * allocator replaces it, glibc's malloc is first set up by malloc_trim()
 * itself, and that setup is not made for two threads at once: two
 * connections of 1 MB bodies that ended together each took glibc's main
 * arena as their own, and the second thread's exit aborted ("malloc
 * assertion failure in __malloc_arena_thread_freeres", attack_serve_slow).
 * The ASan build does not trim. */
#if defined(__SANITIZE_ADDRESS__)
#define SYNCQ_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SYNCQ_UNDER_ASAN 1
#endif
#endif
#ifndef SYNCQ_UNDER_ASAN
#define SYNCQ_UNDER_ASAN 0
#endif

/*
 * A body's buffer, as its first bytes arrive: of its Content-Length
 * exactly (checked against max_body already), so that a large body takes
 * its size once, not up to twice while a doubling buffer is copied. A
 * body without a length grows as it comes (up to max_body).
 */
static void
body_alloc(Buf *b, const char *content_length, long max_body)
{
	char	   *end;
	long long	n;

	if (content_length == NULL)
		return;
	errno = 0;
	n = strtoll(content_length, &end, 10);
	if (errno || *end || n <= 0 || n > max_body)
		return;
	b->p = xmalloc((size_t) n + 1);
	b->cap = (size_t) n + 1;
	b->len = 0;
	b->p[0] = '\0';
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	HttpServer *srv = cls;
	HttpRequest *req = *con_cls;

	(void) version;
	if (req == NULL)
	{
		/* headers only: the server may look at them first */
		conn_phase(srv, conn, CONN_BODY, 0);
		req = xcalloc(1, sizeof(HttpRequest));
		*con_cls = req;
		if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) &&
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
			/* two lengths: a proxy in front may read another request than we do */
			return http_reply_error(srv, conn, MHD_HTTP_BAD_REQUEST, MHD_HTTP_HEADER_CONNECTION, "close",
									"a request may not have both Content-Length and Transfer-Encoding");
		return srv->on_headers ? srv->on_headers(srv, conn, req) : MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		conn_phase(srv, conn, CONN_BODY, *upload_data_size);
		if ((long) (req->body.len + *upload_data_size) > srv->max_body &&
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) == NULL)
		{
			/*
			 * A body without a length (chunked) that grew past max_body:
			 * no reply can be queued in the middle of a body, and reading
			 * the rest only to refuse it is what the sender wants, so the
			 * connection ends here, unread.
			 */
			logmsg(LOG_WARNING, "%s: closed a connection: its request body passed --max-body (%ld bytes)",
				   srv->name, srv->max_body);
			return MHD_NO;
		}
		if ((long) (req->body.len + *upload_data_size) > srv->max_body)
			req->too_big = true;
		else if (!req->too_big)
		{
			if (req->body.p == NULL)
				body_alloc(&req->body, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
																   MHD_HTTP_HEADER_CONTENT_LENGTH),
						   srv->max_body);
			buf_putn(&req->body, upload_data, *upload_data_size);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	conn_phase(srv, conn, CONN_BUSY, 0);
	return srv->handler(srv, conn, req, url, method);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	HttpRequest *req = *con_cls;

	HttpServer *srv = cls;

	(void) toe;
	conn_phase(srv, conn, CONN_HEADERS, 0);
	if (req)
	{
		bool		large = req->body.cap >= TRIM_AFTER_BODY;

		if (srv->on_done)
			srv->on_done(srv, req);
		buf_free(&req->body);
		free(req);
		*con_cls = NULL;
		/* what a large request took (its body, a page of its rows) goes
		 * back to the system, not kept in malloc's free lists of the
		 * thread that read it (docs/security.md, Memory per request) */
#if defined(__GLIBC__) && !SYNCQ_UNDER_ASAN
		if (large)
			malloc_trim(0);
#else
		(void) large;
#endif
	}
}

/* ---- connections per address ------------------------------------------------- */

/*
 * How many connections each address holds (per_ip_limit): counted as
 * libmicrohttpd starts and closes them, checked by its accept policy, so
 * that one host cannot take every connection of the server, and a refusal
 * is logged (once a minute per address). An open-addressing table: an
 * address whose count is 0 leaves its slot to the next one; one that finds
 * no slot near its hash is let in (the server's conn_limit still holds).
 */
#define ADDR_SLOTS 4096
#define ADDR_PROBES 64
#define ADDR_LOG_GAP_US INT64_C(60000000)

typedef struct
{
	char		addr[INET6_ADDRSTRLEN];
	unsigned int n;
	int64_t		logged_us;
} AddrSlot;

struct HttpAddrs
{
	pthread_mutex_t mu;
	AddrSlot	slot[ADDR_SLOTS];
};

static void
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	buf[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf, (socklen_t) len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, buf, (socklen_t) len);
}

/* The slot of addr (mu held): its own, else a free one if take; -1 none. */
static int
addr_slot(struct HttpAddrs *a, const char *addr, bool take)
{
	uint32_t	h = 2166136261u;
	int			free_at = -1;

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	for (int k = 0; k < ADDR_PROBES; k++)
	{
		int			i = (int) ((h + (uint32_t) k) % ADDR_SLOTS);
		AddrSlot   *s = &a->slot[i];

		if (strcmp(s->addr, addr) == 0)
			return i;
		if (s->n == 0 && free_at < 0)
			free_at = i;
		if (s->addr[0] == '\0')
			break;
	}
	if (take && free_at >= 0)
	{
		snprintf(a->slot[free_at].addr, sizeof(a->slot[free_at].addr), "%s", addr);
		a->slot[free_at].n = 0;
	}
	return take ? free_at : -1;
}

/* libmicrohttpd's accept policy: a new connection of an address at its limit is refused. */
static enum MHD_Result
accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	HttpServer *srv = cls;
	char		text[INET6_ADDRSTRLEN];
	int			i;
	bool		ok = true;
	int64_t		now = mono_us();

	(void) addrlen;
	if (srv->addrs == NULL || srv->per_ip_limit == 0)
		return MHD_YES;
	addr_text(addr, text, sizeof(text));
	pthread_mutex_lock(&srv->addrs->mu);
	i = addr_slot(srv->addrs, text, false);
	if (i >= 0 && srv->addrs->slot[i].n >= srv->per_ip_limit)
	{
		AddrSlot   *s = &srv->addrs->slot[i];

		ok = false;
		if (s->logged_us == 0 || now - s->logged_us >= ADDR_LOG_GAP_US)
		{
			s->logged_us = now;
			logmsg(LOG_WARNING, "%s: %s holds %u connections, the limit for one address: its new connections are refused (said once a minute)",
				   srv->name, text, s->n);
		}
	}
	pthread_mutex_unlock(&srv->addrs->mu);
	return ok ? MHD_YES : MHD_NO;
}

/*
 * A connection started or closed: counted for its address, and listed
 * for the time limits (its HttpConn in *ctx).
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_ConnectionNotificationCode code)
{
	HttpServer *srv = cls;
	HttpConn   *c = *ctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		c = xcalloc(1, sizeof(HttpConn));
		addr_text(ci ? ci->client_addr : NULL, c->addr, sizeof(c->addr));
		c->fd = fi ? fi->connect_fd : -1;
		c->addr_slot = -1;
		c->phase = CONN_HEADERS;
		c->since_us = mono_us();
		if (srv->addrs)
		{
			pthread_mutex_lock(&srv->addrs->mu);
			c->addr_slot = addr_slot(srv->addrs, c->addr, true);
			if (c->addr_slot >= 0)
				srv->addrs->slot[c->addr_slot].n++;
			pthread_mutex_unlock(&srv->addrs->mu);
		}
		if (srv->conns)
		{
			pthread_mutex_lock(&srv->conns->mu);
			c->list = srv->conns;
			c->next = srv->conns->head;
			if (c->next)
				c->next->prev = c;
			srv->conns->head = c;
			pthread_mutex_unlock(&srv->conns->mu);
		}
		*ctx = c;
	}
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c)
	{
		if (srv->addrs && c->addr_slot >= 0)
		{
			pthread_mutex_lock(&srv->addrs->mu);
			if (srv->addrs->slot[c->addr_slot].n > 0)
				srv->addrs->slot[c->addr_slot].n--;
			pthread_mutex_unlock(&srv->addrs->mu);
		}
		if (srv->conns)
		{
			pthread_mutex_lock(&srv->conns->mu);
			if (c->prev)
				c->prev->next = c->next;
			else
				srv->conns->head = c->next;
			if (c->next)
				c->next->prev = c->prev;
			pthread_mutex_unlock(&srv->conns->mu);
		}
		free(c);
		*ctx = NULL;
	}
}

const char *
http_client_address(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	addr_text(ci ? ci->client_addr : NULL, buf, len);
	return buf;
}

bool
http_peer_gone(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char		c;
	ssize_t		n;

	if (fi == NULL || fi->connect_fd < 0)
		return false;
	n = recv(fi->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void
http_set_timeout(struct MHD_Connection *conn, unsigned int timeout_s)
{
	HttpConn   *c = conn_of(conn);

	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, timeout_s);
	if (c && c->list)
	{
		pthread_mutex_lock(&c->list->mu);
		c->idle_s = timeout_s;
		pthread_mutex_unlock(&c->list->mu);
	}
}

/* ---- start, stop ------------------------------------------------------------ */

int
http_start(HttpServer *srv, const char *hostport, char *err, size_t errlen)
{
	struct addrinfo *ai = NULL;
	struct MHD_OptionItem opts[10];
	int			n = 0,
				rc;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	sigset_t	block,
				orig;
	const union MHD_DaemonInfo *info;

	if (resolve(hostport, &ai, err, errlen) < 0)
		return -1;
	if (srv->thread_per_connection)
		flags |= MHD_USE_THREAD_PER_CONNECTION;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_CONNECTION_LIMIT, srv->conn_limit, NULL};
	opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_CONNECTION_TIMEOUT, srv->timeout_s, NULL};
	if (srv->per_ip_limit)
	{
		srv->addrs = xcalloc(1, sizeof(struct HttpAddrs));
		pthread_mutex_init(&srv->addrs->mu, NULL);
	}
	if ((srv->header_s || srv->body_s) && (rc = watchdog_start(srv)) != 0)
	{
		snprintf(err, errlen, "cannot start the thread that times requests: %s", strerror(rc));
		http_stop(srv);
		freeaddrinfo(ai);
		return -1;
	}
	if (srv->addrs || srv->conns)
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t) on_connection, srv};
	if (srv->conn_memory)
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t) srv->conn_memory, NULL};
	if (srv->tls_cert)
	{
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) srv->tls_cert};
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) srv->tls_key};
		opts[n++] = (struct MHD_OptionItem) {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) TLS_PRIORITIES};
	}
	opts[n] = (struct MHD_OptionItem) {MHD_OPTION_END, 0, NULL};

	/* the server's threads inherit the mask: signals come to the caller's */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &orig);
	errno = 0;
	srv->mhd = MHD_start_daemon(flags, 0, accept_policy, srv, on_request, srv,
								MHD_OPTION_SOCK_ADDR, ai->ai_addr,
								MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
								MHD_OPTION_EXTERNAL_LOGGER, log_mhd, (void *) srv->name,
								MHD_OPTION_ARRAY, opts,
								MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &orig, NULL);
	freeaddrinfo(ai);
	if (srv->mhd == NULL)
	{
		int			e = errno;

		http_stop(srv);
		snprintf(err, errlen, "cannot listen on %s: %s", hostport,
				 e ? strerror(e) : "the address is in use or not ours");
		return -1;
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : 0;
	return 0;
}

void
http_stop(HttpServer *srv)
{
	watchdog_stop(srv);
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd);
	srv->mhd = NULL;
	if (srv->addrs)
		pthread_mutex_destroy(&srv->addrs->mu);
	free(srv->addrs);
	srv->addrs = NULL;
	if (srv->conns)
	{
		pthread_cond_destroy(&srv->conns->cv);
		pthread_mutex_destroy(&srv->conns->mu);
	}
	free(srv->conns);
	srv->conns = NULL;
}

/* ---- replies ------------------------------------------------------------------ */

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

/*
 * CORS: the request's Origin, if srv allows it (srv->cors), is named in
 * Access-Control-Allow-Origin (never "*"), with Vary: Origin.
 */
static void
add_cors(HttpServer *srv, struct MHD_Connection *conn, struct MHD_Response *r)
{
	const char *origin;

	if (srv->cors == NULL)
		return;
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ORIGIN);
	origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
	if (origin && srv->cors(srv, origin))
		MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, origin);
}

/* Queue response r with the headers every reply of srv carries. */
static enum MHD_Result
queue(HttpServer *srv, struct MHD_Connection *conn, unsigned int code, struct MHD_Response *r,
	  const char *ctype, const char *cache, bool gzipped, const char *hname, const char *hvalue)
{
	enum MHD_Result ret;

	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? cache : "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (ctype && strcmp(ctype, "application/json") == 0)
		add_cors(srv, conn, r);
	if (gzipped)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	if (srv->gzip)
		MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	if (hname)
		MHD_add_response_header(r, hname, hvalue);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
http_reply(HttpServer *srv, struct MHD_Connection *conn, unsigned int code, const char *ctype,
		   const char *cache, char *data, size_t len, const char *hname, const char *hvalue)
{
	struct MHD_Response *r;
	bool		gz = false;

	if (srv->gzip && len >= GZIP_MIN && accepts_gzip(conn))
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
	return queue(srv, conn, code, r, ctype, cache, gz, hname, hvalue);
}

enum MHD_Result
http_reply_static(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
				  const char *ctype, const char *cache, const void *data, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *) data, MHD_RESPMEM_PERSISTENT);

	if (r == NULL)
		return MHD_NO;
	return queue(srv, conn, code, r, ctype, cache, false, NULL, NULL);
}

enum MHD_Result
http_reply_buf(HttpServer *srv, struct MHD_Connection *conn, unsigned int code, Buf *b)
{
	char	   *data;
	size_t		len;

	buf_putc(b, '\n');
	data = b->p;
	len = b->len;
	memset(b, 0, sizeof(*b));
	return http_reply(srv, conn, code, "application/json", NULL, data, len, NULL, NULL);
}

enum MHD_Result
http_reply_json(HttpServer *srv, struct MHD_Connection *conn, unsigned int code, json_t *o,
				const char *hname, const char *hvalue)
{
	char	   *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	size_t		len;

	json_decref(o);
	if (text == NULL)
		return MHD_NO;
	len = strlen(text);
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	text[len] = '\0';
	return http_reply(srv, conn, code, "application/json", NULL, text, len, hname, hvalue);
}

enum MHD_Result
http_reply_errorv(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
				  const char *hname, const char *hvalue, const char *fmt, va_list ap)
{
	char		msg[1024];
	json_t	   *o = json_object();

	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_object_set_new(o, "error", http_jtext(msg));
	json_object_set_new(o, "status", json_integer(code));
	return http_reply_json(srv, conn, code, o, hname, hvalue);
}

enum MHD_Result
http_reply_error(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
				 const char *hname, const char *hvalue, const char *fmt,...)
{
	va_list		ap;
	enum MHD_Result ret;

	va_start(ap, fmt);
	ret = http_reply_errorv(srv, conn, code, hname, hvalue, fmt, ap);
	va_end(ap);
	return ret;
}

enum MHD_Result
http_reply_method(HttpServer *srv, struct MHD_Connection *conn, const char *method, const char *url,
				  const char *allow)
{
	return http_reply_error(srv, conn, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, allow,
							"method %s is not allowed on %s; use %.*s", method, url,
							(int) strcspn(allow, ","), allow);
}

/*
 * The CORS preflight of POST /api/sync/trigger, so that a page of an
 * origin the server allows (auto_sync.js) can ask for a sync.
 */
enum MHD_Result
http_reply_preflight(HttpServer *srv, struct MHD_Connection *conn)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=600");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
	add_cors(srv, conn, r);
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS, "POST");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_MAX_AGE, "600");
	/* a page of a public origin asking a loopback address */
	MHD_add_response_header(r, "Access-Control-Allow-Private-Network", "true");
	{
		enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r);

		MHD_destroy_response(r);
		return ret;
	}
}

/*
 * A JSON string of s: bytes that are not UTF-8 (a message quoting what a
 * client sent, cut at a byte count) become U+FFFD; null for NULL.
 */
json_t *
http_jtext(const char *s)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t		n;
	Buf			b = {0};
	json_t	   *j;

	if (s == NULL)
		return json_null();
	n = strlen(s);
	for (size_t i = 0; i < n;)
	{
		size_t		k = utf8_seq_len(u + i, n - i);

		if (k)
			buf_putn(&b, s + i, k), i += k;
		else
			buf_puts(&b, "\xEF\xBF\xBD"), i++;
	}
	j = json_stringn(b.p ? b.p : "", b.len);
	buf_free(&b);
	return j ? j : json_string("");
}

/* ---- the trigger's rate limit ---------------------------------------------------- */

int64_t
http_rate_take(HttpRateLimit *rl)
{
	int64_t		now = mono_us(),
				gap = (int64_t) HTTP_TRIGGER_GAP_S * 1000000,
				wait_s = 0;

	pthread_mutex_lock(&rl->mu);
	if (rl->last_us != 0 && now - rl->last_us < gap)
		wait_s = (gap - (now - rl->last_us) + 999999) / 1000000;
	else
		rl->last_us = now;
	pthread_mutex_unlock(&rl->mu);
	return wait_s;
}

enum MHD_Result
http_reply_too_soon(HttpServer *srv, struct MHD_Connection *conn, int64_t wait_s)
{
	char		after[24];

	snprintf(after, sizeof(after), "%lld", (long long) wait_s);
	return http_reply_error(srv, conn, MHD_HTTP_TOO_MANY_REQUESTS, MHD_HTTP_HEADER_RETRY_AFTER, after,
							"a sync was requested less than %d seconds ago; try again in %lld s",
							HTTP_TRIGGER_GAP_S, (long long) wait_s);
}

/*
 * libmicrohttpd's messages (about clients that misbehave, mostly: not worth
 * a warning each), at debug level; cls is what to say they are about.
 */
void
log_mhd(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];
	size_t		n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	logmsg(LOG_DEBUG, "%s: %s", (const char *) cls, msg);
}
