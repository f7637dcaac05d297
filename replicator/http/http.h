/*
 * http.h — the one libmicrohttpd layer of syncqd (http.c), under the
 * control API of a client's syncqd (control.c) and `syncqd serve`
 * (serve*.c). Only http/ includes microhttpd.h.
 *
 * The layer starts a server on HOST:PORT (TLS if given a certificate),
 * gathers each request's body up to a limit and hands the whole request to
 * the server's handler; it writes the replies (JSON, gzip'd when long and
 * accepted, the error shape {"error", "status"} of every endpoint) and
 * keeps the one rate limit of POST /api/sync/trigger.
 */
#ifndef SYNCQD_HTTP_H
#define SYNCQD_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

/* POST /api/sync/trigger: at most one accepted per this many seconds. */
#define HTTP_TRIGGER_GAP_S 5

/* A request as the handler gets it: its whole body, and what the server's
 * on_headers hook noted (serve: who it is). */
typedef struct
{
	Buf			body;
	bool		too_big;		/* the body passed max_body: not kept */
	bool		authed;
	bool		admin;
	char		user[256];		/* a user name of serve's: 1 to AUTH_USER_MAX (255) bytes */
	bool		detail;			/* control API: asked by an allowed origin, or by
								 * the person: row values may be shown */
	size_t		held;			/* serve: bytes of body counted against ... */
	int			held_by;		/* ... this user's slot (serve.c, bodies_take) */
} HttpRequest;

typedef struct HttpServer HttpServer;

/*
 * A server's handler, called once a request's body is all in; and an
 * optional hook called when only its headers are (return MHD_YES to go on
 * reading the body, or the result of a reply queued already).
 */
typedef enum MHD_Result (*HttpHandler) (HttpServer *srv, struct MHD_Connection *conn,
										HttpRequest *req, const char *url, const char *method);
typedef enum MHD_Result (*HttpHeadersHook) (HttpServer *srv, struct MHD_Connection *conn,
											HttpRequest *req);
/* May a page of this origin (the request's Origin header) read the JSON
 * replies? (CORS: the reply then names that origin.) */
typedef bool (*HttpOriginCheck) (HttpServer *srv, const char *origin);
/* Called as a request is done, before it is freed (however it ended). */
typedef void (*HttpDoneHook) (HttpServer *srv, HttpRequest *req);

struct HttpServer
{
	/* set before http_start */
	const char *name;			/* for the log: "control API", "serve" */
	HttpHandler handler;
	HttpHeadersHook on_headers; /* or NULL */
	HttpDoneHook on_done;		/* or NULL */
	void	   *cls;			/* the handler's own */
	long		max_body;		/* bytes of a body kept, at most */
	bool		thread_per_connection;	/* else one polling thread */
	HttpOriginCheck cors;		/* JSON replies: Access-Control-Allow-Origin for
								 * the origins it allows; NULL: none */
	bool		gzip;			/* long replies gzip'd when accepted */
	unsigned int conn_limit;
	unsigned int per_ip_limit;	/* connections of one address, at most (0:
								 * none); a refusal is logged */
	unsigned int timeout_s;		/* a connection idle this long is closed
								 * (http_set_timeout: per connection) */
	/*
	 * Time limits on a request however its bytes trickle in (0: none), as
	 * PostgreSQL's authentication_timeout and Apache's mod_reqtimeout: its
	 * headers (and a TLS handshake before the first) within header_s of
	 * the connection's start or its last reply (plus its idle timeout
	 * once http_set_timeout raised it); its body at body_min_rate bytes a
	 * second at least, after body_s. Over them the connection is closed,
	 * logged (http.c, the time limits).
	 */
	unsigned int header_s;
	unsigned int body_s;
	unsigned int body_min_rate;
	size_t		conn_memory;	/* 0: libmicrohttpd's default */
	const char *tls_cert;		/* PEM text, or NULL for plain HTTP */
	const char *tls_key;
	/* set by http_start */
	struct MHD_Daemon *mhd;
	struct HttpAddrs *addrs;	/* connections per address (http.c) */
	struct HttpConns *conns;	/* the open connections, timed (http.c) */
	unsigned int port;			/* the port bound (for port 0) */
};

/* HOST:PORT ([v6 address]:PORT too) into host and port; -1 with err (the
 * reason, without the value) if it is not that. */
int			http_hostport_parse(const char *hostport, char *host, size_t hostlen,
								char *port, size_t portlen, char *err, size_t errlen);

/* Start srv on hostport; -1 with err. Its threads start with SIGTERM,
 * SIGINT and SIGHUP blocked: signals come to the caller's thread. */
int			http_start(HttpServer *srv, const char *hostport, char *err, size_t errlen);
void		http_stop(HttpServer *srv);

/* Replies. http_reply takes data (malloc'd); http_reply_static does not. */
enum MHD_Result http_reply(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
						   const char *ctype, const char *cache, char *data, size_t len,
						   const char *hname, const char *hvalue);
enum MHD_Result http_reply_static(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
								  const char *ctype, const char *cache, const void *data,
								  size_t len);
/* JSON: a document of jansson's (the reference is taken), printed for a
 * person; compact JSON text in b (buf_free'd). */
enum MHD_Result http_reply_json(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
								json_t *o, const char *hname, const char *hvalue);
enum MHD_Result http_reply_buf(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
							   Buf *b);
/* {"error": message, "status": code}, with one extra header if hname. */
enum MHD_Result http_reply_error(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
								 const char *hname, const char *hvalue, const char *fmt,...)
			__attribute__((format(printf, 6, 7)));
enum MHD_Result http_reply_errorv(HttpServer *srv, struct MHD_Connection *conn, unsigned int code,
								  const char *hname, const char *hvalue, const char *fmt, va_list ap)
			__attribute__((format(printf, 6, 0)));
/* 405 naming the methods allowed; 204 to the trigger's CORS preflight. */
enum MHD_Result http_reply_method(HttpServer *srv, struct MHD_Connection *conn, const char *method,
								  const char *url, const char *allow);
enum MHD_Result http_reply_preflight(HttpServer *srv, struct MHD_Connection *conn);

/* The address of the client of conn, as text, into buf; "" if unknown. */
const char *http_client_address(struct MHD_Connection *conn, char *buf, size_t len);

/* Has the client of conn closed its end (or its socket failed)? A request
 * has been read whole before it is handled, so a byte that waits is a
 * pipelined request's, and an end of stream is the client's close. */
bool		http_peer_gone(struct MHD_Connection *conn);

/* conn may stay idle timeout_s seconds from now on (it authenticated, say);
 * its next requests' headers get as long again beyond header_s. */
void		http_set_timeout(struct MHD_Connection *conn, unsigned int timeout_s);

/* A JSON string of s, whatever its bytes (those that are not UTF-8
 * become U+FFFD); null for NULL. */
json_t	   *http_jtext(const char *s);

/* The trigger's rate limit: 0 if one may go now (it is counted), else the
 * seconds until one may. */
typedef struct
{
	pthread_mutex_t mu;
	int64_t		last_us;		/* mono_us() of the last accepted; 0: none */
} HttpRateLimit;

#define HTTP_RATE_LIMIT_INIT {PTHREAD_MUTEX_INITIALIZER, 0}

int64_t		http_rate_take(HttpRateLimit *rl);
/* 429 with Retry-After for a trigger wait_s too soon. */
enum MHD_Result http_reply_too_soon(HttpServer *srv, struct MHD_Connection *conn, int64_t wait_s);

/* libmicrohttpd's own messages, to the log at debug level; cls names the
 * server. */
void		log_mhd(void *cls, const char *fmt, va_list ap);

#endif							/* SYNCQD_HTTP_H */
