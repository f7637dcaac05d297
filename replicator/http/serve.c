/*
 * serve.c — `syncqd serve`: the hub's side of the sync exchange over
 * HTTP(S), in front of PostgreSQL (docs/http.md).
 *
 *   syncqd serve --postgres CONNINFO --listen HOST:PORT [--tls-cert F --tls-key F]
 *                [--credentials FILE] [--max-body BYTES] [--pool N]
 *                [--replica CONNINFO]...
 *
 * serve keeps nothing of its own beyond PostgreSQL, so several can run
 * behind a load balancer; downloads may read the hub's streaming replicas
 * (--replica, serve_replica.c). One thread per connection (libmicrohttpd, through
 * http.c); a request holds a hub connection only while it runs against the
 * hub. The files of serve share serve_state.h.
 *
 *   serve_main   the command, as a list of steps: parse_options,
 *                serve_open (credentials, TLS files, the hub checked,
 *                the replicas said),
 *                serve_listen (the server and the wake-up listener),
 *                wait_for_stop (the signal loop), serve_close
 *
 * Every request is first checked for who sends it (on_headers: Basic auth,
 * Content-Length against --max-body), then routed (handle) to serve_data.c
 * or serve_status.c. What one address may take (docs/security.md):
 * PER_ADDRESS connections (http.c refuses more, logged), AUTH_TIMEOUT_S of
 * silence before it signs in (IDLE_TIMEOUT_S after), a request's headers
 * within HEADER_TIMEOUT_S and its body at BODY_MIN_RATE after
 * BODY_TIMEOUT_S however they trickle (http.c closes it, logged), FAILS_PER_ADDRESS
 * failed password attempts a FAIL_WINDOW_S (then 429 with Retry-After, its
 * attempts not even checked, so that they take no password-check slot from
 * anyone: may_try, tried); FAILS_PER_USER for one user name from any
 * addresses likewise, except from those it last signed in from
 * (user_may_try, user_tried).
 */
#include "base/base.h"
#include "base/buf.h"
#include "http/serve.h"
#include "http/serve_state.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the command line says. */
typedef struct
{
	const char *postgres;
	bool		postgres_hidden;	/* it held a password, now hidden in argv */
	const char *listen_at;
	const char *cert_file;
	const char *key_file;
	const char *cred_file;
	const char *log_file;
	long		max_body;
	int			pool;
	long		max_set_aside;
	char	   *replicas[REPLICAS_MAX];	/* --replica, in the order given */
	int			nreplicas;
	bool		replica_hidden; /* one held a password, now hidden in argv */
} ServeOptions;

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
		   "      --pool=N             hub connections for requests, at most (default %d);\n"
		   "                           one more listens for the hub's wake-ups\n"
		   "      --replica=CONNINFO   a streaming replica (hot standby) of the hub that\n"
		   "                           downloads and first syncs read when it has replayed\n"
		   "                           what they need; repeat for more (at most %d)\n"
		   "      --max-set-aside=N    a client's refused changes kept in sync_errors, at\n"
		   "                           most; then its uploads get 507 (default %d)\n"
		   "  -l, --log-file=FILE      log there instead of stderr\n"
		   "      --log-level=LEVEL    debug, info, warning or error (default info)\n"
		   "  -h, --help               show this help and exit\n\n"
		   "Signals: SIGTERM or SIGINT finish the requests at hand and exit 0.\n",
		   MAX_BODY_DEFAULT, POOL_DEFAULT, REPLICAS_MAX, HUB_SET_ASIDE_MAX);
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

/* The command line into o; exits 1 with the reason if it is wrong, 0 after --help. */
static void
parse_options(int argc, char **argv, ServeOptions *o)
{
	static const struct option opts[] = {
		{"postgres", required_argument, NULL, 'p'},
		{"listen", required_argument, NULL, 'L'},
		{"tls-cert", required_argument, NULL, 'C'},
		{"tls-key", required_argument, NULL, 'K'},
		{"credentials", required_argument, NULL, 'u'},
		{"max-body", required_argument, NULL, 'm'},
		{"pool", required_argument, NULL, 'P'},
		{"max-set-aside", required_argument, NULL, 'S'},
		{"replica", required_argument, NULL, 'R'},
		{"log-file", required_argument, NULL, 'l'},
		{"log-level", required_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	char		host[256],
				port[16],
				why[128];
	char	   *end;
	int			c;

	*o = (ServeOptions) {.max_body = MAX_BODY_DEFAULT, .pool = POOL_DEFAULT,
	.max_set_aside = HUB_SET_ASIDE_MAX};
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:L:l:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'p':
				o->postgres = optarg;
				if (hub_conninfo_has_password(optarg))
				{
					static char *copy;	/* reachable: no leak at exit */

					free(copy);
					o->postgres = copy = arg_take_secret(optarg);
					o->postgres_hidden = true;
				}
				break;
			case 'L':
				o->listen_at = optarg;
				break;
			case 'R':
				_Static_assert(REPLICAS_MAX == 16, "the message says 16");
				if (o->nreplicas == REPLICAS_MAX)
					serve_bad_args("too many --replica \"%s\": at most 16", optarg);
				/* one with a password is hidden from the command line, as --postgres */
				if (hub_conninfo_has_password(optarg))
				{
					o->replicas[o->nreplicas++] = arg_take_secret(optarg);
					o->replica_hidden = true;
				}
				else
					o->replicas[o->nreplicas++] = xstrdup(optarg);
				break;
			case 'C':
				o->cert_file = optarg;
				break;
			case 'K':
				o->key_file = optarg;
				break;
			case 'u':
				o->cred_file = optarg;
				break;
			case 'm':
				errno = 0;
				o->max_body = strtol(optarg, &end, 10);
				if (errno || *end || o->max_body < 1024 || o->max_body > 2147483647L)
					serve_bad_args("invalid --max-body \"%s\": give bytes, from 1024 to 2147483647", optarg);
				break;
			case 'P':
				o->pool = (int) strtol(optarg, &end, 10);
				if (*end || o->pool < 1 || o->pool > 1000)
					serve_bad_args("invalid --pool \"%s\": give a number of connections, from 1 to 1000", optarg);
				break;
			case 'S':
				errno = 0;
				o->max_set_aside = strtol(optarg, &end, 10);
				if (errno || end == optarg || *end || o->max_set_aside < 1 || o->max_set_aside > 100000000)
					serve_bad_args("invalid --max-set-aside \"%s\": give a number of changes, from 1 to 100000000", optarg);
				break;
			case 'l':
				o->log_file = optarg;
				break;
			case 'v':
				if (log_level_set(optarg) < 0)
					serve_bad_args("invalid --log-level \"%s\": debug, info, warning or error", optarg);
				break;
			case 'h':
				usage();
				exit(0);
			default:
				fputs("Try \"syncqd serve --help\" for more information.\n", stderr);
				exit(1);
		}
	}
	if (optind < argc)
		serve_bad_args("unexpected argument \"%s\"", argv[optind]);
	if (o->postgres == NULL)
		serve_bad_args("%s", "no hub: give --postgres CONNINFO");
	if (o->listen_at == NULL)
		serve_bad_args("%s", "no address: give --listen HOST:PORT");
	if (http_hostport_parse(o->listen_at, host, sizeof(host), port, sizeof(port), why, sizeof(why)) < 0)
		serve_bad_args("invalid --listen \"%s\": give HOST:PORT, e.g. 0.0.0.0:8443", o->listen_at);
	if ((o->cert_file == NULL) != (o->key_file == NULL))
		serve_bad_args("%s", "HTTPS needs both --tls-cert and --tls-key");
}

/* ---- who asks, and for what ----------------------------------------------------- */

static enum MHD_Result
deny(Serve *s, struct MHD_Connection *conn)
{
	return serve_error(s, conn, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					   "Basic realm=\"syncq\", charset=\"UTF-8\"", "authentication required");
}

_Static_assert(sizeof(((HttpRequest *) 0)->user) > AUTH_USER_MAX, "HttpRequest.user holds every user name");

/*
 * The slot of addr's failed attempts (auth_mu held); a new window once the
 * last one ended. An address whose slot another address holds in its
 * window shares that slot's count: taking the slot over would reset it,
 * and two addresses of one hash (easy to find) guessing in turn would
 * never be refused.
 */
static FailSlot *
fail_slot(Serve *s, const char *addr, int64_t now)
{
	uint32_t	h = 2166136261u;
	FailSlot   *f;

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char) *p) * 16777619u;
	f = &s->fail_slots[h % FAIL_SLOTS];
	if (now - f->window_us >= FAIL_WINDOW_S * INT64_C(1000000) ||
		(f->fails == 0 && strcmp(f->addr, addr) != 0))
	{
		snprintf(f->addr, sizeof(f->addr), "%s", addr);
		f->window_us = now;
		f->fails = 0;
		f->logged = false;
	}
	return f;
}

/*
 * May this address try a password now? 0, or the seconds until its window
 * ends: it failed FAILS_PER_ADDRESS times in it (said in the log once).
 */
static int64_t
may_try(Serve *s, const char *addr)
{
	int64_t		now = mono_us(),
				wait_s = 0;
	FailSlot   *f;

	pthread_mutex_lock(&s->auth_mu);
	f = fail_slot(s, addr, now);
	if (f->fails >= FAILS_PER_ADDRESS)
	{
		wait_s = (f->window_us + FAIL_WINDOW_S * INT64_C(1000000) - now + 999999) / 1000000;
		if (!f->logged)
			logmsg(LOG_WARNING, "serve: %s failed %d password attempts in %d s: its attempts get 429 for %lld s",
				   addr, f->fails, FAIL_WINDOW_S, (long long) wait_s);
		f->logged = true;
	}
	pthread_mutex_unlock(&s->auth_mu);
	return wait_s > 0 ? wait_s : 0;
}

/* A password attempt of this address failed. */
static void
tried_and_failed(Serve *s, const char *addr)
{
	pthread_mutex_lock(&s->auth_mu);
	fail_slot(s, addr, mono_us())->fails++;
	pthread_mutex_unlock(&s->auth_mu);
}

/*
 * The failed attempts of user name (who: its credential, -1 none; auth_mu
 * held); a new window once the last one ended. A name no credential has
 * shares a slot by hash, as an address does (fail_slot).
 */
static UserFails *
user_slot(Serve *s, int who, const char *name, int64_t now)
{
	UserFails  *u;

	if (who >= 0)
		u = &s->user_fails[who];
	else
	{
		uint32_t	h = 2166136261u;

		for (const char *p = name; *p; p++)
			h = (h ^ (unsigned char) *p) * 16777619u;
		u = &s->user_fails[s->nusers + (int) (h % USER_SLOTS)];
		if (u->fails == 0 && strcmp(u->user, name) != 0)
			snprintf(u->user, sizeof(u->user), "%s", name);
	}
	if (now - u->window_us >= FAIL_WINDOW_S * INT64_C(1000000))
	{
		u->window_us = now;
		u->fails = 0;
		u->logged = false;
	}
	return u;
}

/* name for the log: printable ASCII, at most 64 bytes, the rest '?' */
static void
log_name(const char *name, char *out, size_t outlen)
{
	size_t		i;

	for (i = 0; name[i] && i < 64 && i + 1 < outlen; i++)
		out[i] = name[i] > ' ' && name[i] < 127 && name[i] != '"' ? name[i] : '?';
	out[i] = '\0';
}

/*
 * May addr try a password for user name (who as user_slot)? 0, or the
 * seconds until it may: FAILS_PER_USER failed attempts of the name in the
 * window, from any addresses, and addr is none that signed in as it
 * lately (the user's own sites keep working while others guess).
 */
static int64_t
user_may_try(Serve *s, int who, const char *name, const char *addr)
{
	int64_t		now = mono_us(),
				wait_s = 0;
	UserFails  *u;
	bool		good = false;

	pthread_mutex_lock(&s->auth_mu);
	u = user_slot(s, who, name, now);
	for (int i = 0; i < u->ngood && !good; i++)
		good = strcmp(u->good[i], addr) == 0;
	if (u->fails >= FAILS_PER_USER && !good)
	{
		wait_s = (u->window_us + FAIL_WINDOW_S * INT64_C(1000000) - now + 999999) / 1000000;
		if (!u->logged)
		{
			char		shown[72];

			log_name(name, shown, sizeof(shown));
			logmsg(LOG_WARNING, "serve: user \"%s\" failed %d password attempts in %d s: attempts for it get 429 for %lld s, except from the addresses it last signed in from",
				   shown, u->fails, FAIL_WINDOW_S, (long long) wait_s);
		}
		u->logged = true;
	}
	pthread_mutex_unlock(&s->auth_mu);
	return wait_s > 0 ? wait_s : 0;
}

/* A password for user name failed; or one of a credential's was right, from addr. */
static void
user_tried(Serve *s, int who, const char *name, const char *addr, bool ok)
{
	UserFails  *u;

	pthread_mutex_lock(&s->auth_mu);
	u = user_slot(s, who, name, mono_us());
	if (!ok)
		u->fails++;
	else if (who >= 0)
	{
		bool		known = false;

		for (int i = 0; i < u->ngood && !known; i++)
			known = strcmp(u->good[i], addr) == 0;
		if (!known)
		{
			if (u->ngood == USER_GOOD)
				memmove(u->good[0], u->good[1], sizeof(u->good[0]) * (USER_GOOD - 1));
			else
				u->ngood++;
			snprintf(u->good[u->ngood - 1], sizeof(u->good[0]), "%s", addr);
		}
	}
	pthread_mutex_unlock(&s->auth_mu);
}

/* A password check may take ~16 MB for yescrypt: AUTH_SLOTS at once. */
static bool
check_password(Serve *s, const char *authorization, HttpRequest *req)
{
	bool		ok;

	pthread_mutex_lock(&s->auth_mu);
	while (s->auth_busy >= AUTH_SLOTS)
		pthread_cond_wait(&s->auth_cv, &s->auth_mu);
	s->auth_busy++;
	pthread_mutex_unlock(&s->auth_mu);
	ok = auth_check(s->auth, authorization, req->user, sizeof(req->user), &req->admin);
	pthread_mutex_lock(&s->auth_mu);
	s->auth_busy--;
	pthread_cond_signal(&s->auth_cv);
	pthread_mutex_unlock(&s->auth_mu);
	return ok;
}

/* The most a request's body will take: its Content-Length; --max-body
 * for a chunked one; 0 for none. */
static size_t
body_size(HttpServer *srv, struct MHD_Connection *conn, const char *cl)
{
	long long	n;

	if (cl)
		return (n = strtoll(cl, NULL, 10)) > 0 ? (size_t) n : 0;
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return (size_t) srv->max_body;
	return 0;
}

/*
 * May user slot `slot` (its credential, or nusers: the admin of the
 * environment) have n bytes more of request bodies at once? Then they
 * count against it until the request is done (bodies_give). A user's
 * bodies take the memory they take (docs/security.md, Memory per
 * request) only against that user: one site cannot hold it against
 * another.
 */
static bool
bodies_take(Serve *s, HttpRequest *req, int slot, size_t n)
{
	bool		ok;

	if (n == 0)
		return true;
	pthread_mutex_lock(&s->auth_mu);
	ok = s->user_bodies[slot] + n <= (size_t) BODIES_PER_USER * (size_t) s->http.max_body;
	if (ok)
	{
		s->user_bodies[slot] += n;
		req->held = n;
		req->held_by = slot;
	}
	pthread_mutex_unlock(&s->auth_mu);
	return ok;
}

/* A request is done: its body no longer counts against its user. */
static void
bodies_give(HttpServer *srv, HttpRequest *req)
{
	Serve	   *s = srv->cls;

	if (req->held == 0)
		return;
	pthread_mutex_lock(&s->auth_mu);
	s->user_bodies[req->held_by] -= req->held;
	pthread_mutex_unlock(&s->auth_mu);
	req->held = 0;
}

/* Headers only: check who it is and how much is coming first. */
static enum MHD_Result
on_headers(HttpServer *srv, struct MHD_Connection *conn, HttpRequest *req)
{
	Serve	   *s = srv->cls;
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *au = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char		addr[64],
				name[AUTH_USER_MAX + 1],
				after[24];
	int64_t		wait_s;
	int			who = -2;

	http_client_address(conn, addr, sizeof(addr));
	if (au && (wait_s = may_try(s, addr)) > 0)
	{
		snprintf(after, sizeof(after), "%lld", (long long) wait_s);
		return serve_error(s, conn, MHD_HTTP_TOO_MANY_REQUESTS, MHD_HTTP_HEADER_RETRY_AFTER, after,
						   "too many failed password attempts from this address; try again in %lld s",
						   (long long) wait_s);
	}
	if (au && (who = auth_user_of(s->auth, au, name, sizeof(name))) > -2 &&
		(wait_s = user_may_try(s, who, name, addr)) > 0)
	{
		snprintf(after, sizeof(after), "%lld", (long long) wait_s);
		return serve_error(s, conn, MHD_HTTP_TOO_MANY_REQUESTS, MHD_HTTP_HEADER_RETRY_AFTER, after,
						   "too many failed password attempts for this user name; try again in %lld s",
						   (long long) wait_s);
	}
	req->authed = au && check_password(s, au, req);
	if (who > -2)
		user_tried(s, who, name, addr, req->authed);
	if (!req->authed)
	{
		/* a password tried (not a malformed header) and wrong */
		if (au && strncasecmp(au, "Basic ", 6) == 0)
			tried_and_failed(s, addr);
		return deny(s, conn);
	}
	http_set_timeout(conn, IDLE_TIMEOUT_S);
	if (cl && strtoll(cl, NULL, 10) > srv->max_body)
		return serve_error(s, conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
						   "the body is larger than %ld bytes (serve --max-body)", srv->max_body);
	if (!bodies_take(s, req, who >= 0 ? who : s->nusers, body_size(srv, conn, cl)))
	{
		logmsg(LOG_WARNING, "user \"%s\" (%s) has %d times --max-body of request bodies coming or being worked on already: 503",
			   req->user, addr, BODIES_PER_USER);
		return serve_error(s, conn, MHD_HTTP_SERVICE_UNAVAILABLE, MHD_HTTP_HEADER_RETRY_AFTER, "1",
						   "this user has %ld bytes of request bodies (%d times --max-body) coming or being worked on already; try again",
						   (long) BODIES_PER_USER * srv->max_body, BODIES_PER_USER);
	}
	return MHD_YES;
}

/* Every request, its body all in: route it. */
static enum MHD_Result
handle(HttpServer *srv, struct MHD_Connection *conn, HttpRequest *req, const char *url,
	   const char *method)
{
	Serve	   *s = srv->cls;
	bool		get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool		post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	if (req->too_big)
		return serve_error(s, conn, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
						   "the body is larger than %ld bytes (serve --max-body)", srv->max_body);
	if (strcmp(url, "/api/sync/data") == 0)
		return post ? serve_data(s, conn, req) : serve_method(s, conn, method, url, "POST");
	if (strcmp(url, "/api/sync/wait") == 0)
		return get ? serve_wait(s, conn) : serve_method(s, conn, method, url, "GET");
	if (strcmp(url, "/api/sync/status") == 0 || strcmp(url, "/") == 0)
	{
		if (!get)
			return serve_method(s, conn, method, url, "GET, HEAD");
		if (!req->admin)
			return serve_error(s, conn, MHD_HTTP_FORBIDDEN, NULL, NULL,
							   "the hub's status is for the admin user ($AMRS_ADMIN_USERNAME)");
		return serve_status(s, conn, url[1] == '\0');
	}
	if (strcmp(url, "/api/sync/trigger") == 0)
	{
		if (!post)
			return serve_method(s, conn, method, url, "POST");
		/* every client syncs (and retries its set-aside changes): not for one site's user */
		if (!req->admin)
			return serve_error(s, conn, MHD_HTTP_FORBIDDEN, NULL, NULL,
							   "a sync of every client is for the admin user ($AMRS_ADMIN_USERNAME)");
		return serve_trigger(s, conn);
	}
	return serve_error(s, conn, MHD_HTTP_NOT_FOUND, NULL, NULL,
					   "no such resource; try POST /api/sync/data, GET /api/sync/status or GET /");
}

/* ---- the steps of serve_main ------------------------------------------------------ */

/*
 * May the TLS private key be used? As PostgreSQL asks of its ssl_key_file:
 * no access for group or others when serve's user owns it (0600), at most
 * read for the group when root owns it (0640). -1 with err otherwise.
 */
static int
check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0)
	{
		snprintf(err, errlen, "cannot read the private key \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO))) ||
		(st.st_uid == 0 && st.st_uid != geteuid() && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))) ||
		(st.st_uid != geteuid() && st.st_uid != 0))
	{
		snprintf(err, errlen, "the private key \"%s\" may be read or changed by other users (mode %04o): it must be owned by serve's user with mode 0600, or by root with 0640 (chmod 600 %s)",
				 path, (unsigned) (st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/*
 * Everything serve needs before it listens: the log, the credentials, the
 * TLS files, and the hub, which must be there and have syncq. -1 with the
 * reason printed.
 */
static int
serve_open(Serve *s, const ServeOptions *o, char **cert, char **key)
{
	char		err[2048];
	Hub		   *h;

	if (o->log_file && log_open(o->log_file, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "syncqd serve: %s\n", err);
		return -1;
	}
	if (o->postgres_hidden)
		logmsg(LOG_WARNING, "--postgres holds a password, which every local user could read in serve's command line until serve hid it just now: give it in a password file (PGPASSFILE, ~/.pgpass) or $PGPASSWORD instead");
	if (o->replica_hidden)
		logmsg(LOG_WARNING, "--replica holds a password, which every local user could read in serve's command line until serve hid it just now: give it in a password file (PGPASSFILE, ~/.pgpass) or $PGPASSWORD instead");
	s->auth = auth_load(o->cred_file, err, sizeof(err));
	if (s->auth == NULL)
	{
		fprintf(stderr, "syncqd serve: %s\n", err);
		return -1;
	}
	if (o->cert_file && (check_key_file(o->key_file, err, sizeof(err)) < 0 ||
						 (*cert = read_file(o->cert_file, err, sizeof(err))) == NULL ||
						 (*key = read_file(o->key_file, err, sizeof(err))) == NULL))
	{
		fprintf(stderr, "syncqd serve: TLS: %s\n", err);
		return -1;
	}
	serve_state_init(s, o->postgres, o->pool, o->max_set_aside);
	s->nusers = auth_count(s->auth);
	s->user_fails = xcalloc((size_t) (s->nusers + USER_SLOTS), sizeof(UserFails));
	s->user_bodies = xcalloc((size_t) s->nusers + 1, sizeof(size_t));
	h = pool_get(&s->pool, err, sizeof(err));
	if (h == NULL)
	{
		fprintf(stderr, "syncqd serve: %s\n", err);
		return -1;
	}
	logmsg(LOG_INFO, "hub: database \"%s\" on %s:%s, node %s", PQdb(h->conn), PQhost(h->conn),
		   PQport(h->conn), h->node_id);
	snprintf(s->hub_node_id, sizeof(s->hub_node_id), "%s", h->node_id);
	pool_put(&s->pool, h);
	return replica_open(s, o->replicas, o->nreplicas);
}

/* Listen, and start the thread that hears the hub's wake-ups. */
static int
serve_listen(Serve *s, const ServeOptions *o, const char *cert, const char *key)
{
	char		err[1024];
	sigset_t	block,
				orig;
	int			rc;

	s->http = (HttpServer) {
		.name = "serve",
		.handler = handle,
		.on_headers = on_headers,
		.on_done = bodies_give,
		.cls = s,
		.max_body = o->max_body,
		.thread_per_connection = true,
		.gzip = true,
		.conn_limit = 1000,
		.per_ip_limit = PER_ADDRESS,
		.timeout_s = AUTH_TIMEOUT_S,
		.header_s = HEADER_TIMEOUT_S,
		.body_s = BODY_TIMEOUT_S,
		.body_min_rate = BODY_MIN_RATE,
		.tls_cert = cert,
		.tls_key = key,
	};
	if (http_start(&s->http, o->listen_at, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "syncqd serve: %s\n", err);
		return -1;
	}
	/* the listener inherits the mask: signals come to this thread */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &orig);
	rc = serve_listener_start(s);
	pthread_sigmask(SIG_SETMASK, &orig, NULL);
	if (rc != 0)
	{
		fprintf(stderr, "syncqd serve: cannot start the thread that listens for the hub's wake-ups: %s\n",
				strerror(rc));
		http_stop(&s->http);
		return -1;
	}
	logmsg(LOG_INFO, "syncqd %s serve listening on %.*s:%u (%s), max body %ld bytes, %d hub connections",
		   SYNCQD_VERSION, (int) (strrchr(o->listen_at, ':') - o->listen_at), o->listen_at,
		   s->http.port, cert ? "HTTPS" : "HTTP", o->max_body, s->pool.max);
	return 0;
}

/* Sleep in sigsuspend until SIGTERM or SIGINT; SIGHUP reopens the log. */
static void
wait_for_stop(const ServeOptions *o)
{
	sigset_t	block,
				orig;
	char		err[1024];

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	while (!stop_requested)
	{
		if (reopen_requested)
		{
			reopen_requested = 0;
			if (o->log_file && log_open(o->log_file, err, sizeof(err)) < 0)
				fprintf(stderr, "syncqd serve: %s\n", err);
		}
		sigprocmask(SIG_BLOCK, &block, &orig);
		if (!stop_requested && !reopen_requested)
			sigsuspend(&orig);
		sigprocmask(SIG_SETMASK, &orig, NULL);
	}
	logmsg(LOG_INFO, "stopping on request");
}

/* The requests at hand finish; then everything is given back. */
static void
serve_close(Serve *s, bool listening)
{
	if (listening)
	{
		serve_listener_stop(s);
		http_stop(&s->http);
	}
	replica_close(s);
	serve_state_free(s);
	free(s->user_fails);
	free(s->user_bodies);
	auth_free(s->auth);
}

int
serve_main(int argc, char **argv)
{
	ServeOptions o;
	Serve		s = {0};
	char	   *cert = NULL,
			   *key = NULL;
	int			status = 1;

	parse_options(argc, argv, &o);
	signals_install();
	if (serve_open(&s, &o, &cert, &key) == 0 && serve_listen(&s, &o, cert, key) == 0)
	{
		wait_for_stop(&o);
		status = 0;
	}
	serve_close(&s, status == 0);
	for (int i = 0; i < o.nreplicas; i++)
		free(o.replicas[i]);
	free(cert);
	free(key);
	return status;
}
