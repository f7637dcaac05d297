/*
 * serve_state.c — what the files of `syncqd serve` share (serve_state.h).
 *
 *   serve_state_init, serve_state_free   the locks, the pool, the ids
 *   pool_init, pool_close                a pool of connections to one server
 *   pool_get, pool_take, pool_put        a connection, taken and given back
 *   pool_drop_idle                       close the idle ones (their server went away)
 *   serve_listener_start, _stop          the thread that LISTENs for the
 *                                        hub's wake-ups (hub/notify.c)
 *   serve_count                          count a reply for the status
 *   serve_error, serve_method,
 *   serve_hub_error                      error replies, counted
 */
#include "base/base.h"
#include "http/serve_state.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the connection pool ------------------------------------------------- */

void
pool_init(Pool *p, const char *conninfo, int max, long max_set_aside)
{
	p->conninfo = xstrdup(conninfo);
	p->max = max;
	p->max_set_aside = max_set_aside;
	p->idle = xcalloc((size_t) max, sizeof(Hub *));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
}

/* A connection of the hub's pool: waits up to POOL_WAIT_S for one. */
Hub *
pool_get(Pool *p, char *err, size_t errlen)
{
	return pool_take(p, POOL_WAIT_S, NULL, err, errlen);
}

/*
 * A connection of pool p, idle or new; waits up to wait_s seconds while all
 * are busy (then NULL, *busy set if busy is given), NULL with err if it
 * cannot connect.
 */
Hub *
pool_take(Pool *p, int wait_s, bool *busy, char *err, size_t errlen)
{
	struct timespec until;
	Hub		   *h = NULL;

	if (busy)
		*busy = false;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&p->mu);
	while (p->nidle == 0 && p->open >= p->max)
	{
		if (wait_s <= 0 || pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
		{
			pthread_mutex_unlock(&p->mu);
			if (busy)
				*busy = true;
			snprintf(err, errlen, "all %d hub connections stayed busy for %d s", p->max, wait_s);
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
		if (h != NULL)
			h->max_set_aside = p->max_set_aside;
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

void
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

/* Close the idle connections: their server went away (or restarted). */
void
pool_drop_idle(Pool *p)
{
	Hub		  **idle;
	int			n;

	pthread_mutex_lock(&p->mu);
	n = p->nidle;
	idle = xmalloc((size_t) (n ? n : 1) * sizeof(Hub *));
	memcpy(idle, p->idle, (size_t) n * sizeof(Hub *));
	p->nidle = 0;
	p->open -= n;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < n; i++)
		hub_close(idle[i]);
	free(idle);
}

void
pool_close(Pool *p)
{
	for (int i = 0; i < p->nidle; i++)
		hub_close(p->idle[i]);
	free(p->idle);
	p->idle = NULL;
	p->nidle = 0;
	free(p->conninfo);
	p->conninfo = NULL;
}

/* ---- the hub's wake-ups ---------------------------------------------------- */

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

/* Start the listener thread; 0, or an error number. */
int
serve_listener_start(Serve *s)
{
	return pthread_create(&s->listener, NULL, listener_main, s);
}

/* Stop it, and wake every long poll. */
void
serve_listener_stop(Serve *s)
{
	pthread_mutex_lock(&s->wakes.mu);
	s->wakes.stop = true;
	pthread_cond_broadcast(&s->wakes.cv);
	pthread_mutex_unlock(&s->wakes.mu);
	pthread_join(s->listener, NULL);
}

/* ---- counted replies ---------------------------------------------------------- */

void
serve_count(Serve *s, unsigned int code)
{
	pthread_mutex_lock(&s->count_mu);
	if (code < 400)
		s->served++;
	else
		s->failed++;
	pthread_mutex_unlock(&s->count_mu);
}

enum MHD_Result
serve_error(Serve *s, struct MHD_Connection *conn, unsigned int code, const char *hname,
			const char *hvalue, const char *fmt,...)
{
	va_list		ap;
	enum MHD_Result ret;

	serve_count(s, code);
	va_start(ap, fmt);
	ret = http_reply_errorv(&s->http, conn, code, hname, hvalue, fmt, ap);
	va_end(ap);
	return ret;
}

/* A hub failure: 503 if the hub is unreachable, else 500, with the reason. */
enum MHD_Result
serve_hub_error(Serve *s, struct MHD_Connection *conn, const Hub *h, const char *what, const char *err)
{
	bool		down = h == NULL || PQstatus(h->conn) != CONNECTION_OK ||
		strncmp(h->sqlstate, "08", 2) == 0 || strncmp(h->sqlstate, "57", 2) == 0;

	logmsg(LOG_WARNING, "%s: %s", what, err);
	return serve_error(s, conn, down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
					   down ? MHD_HTTP_HEADER_RETRY_AFTER : NULL, down ? "5" : NULL, "%s: %s", what, err);
}

enum MHD_Result
serve_method(Serve *s, struct MHD_Connection *conn, const char *method, const char *url,
			 const char *allow)
{
	serve_count(s, MHD_HTTP_METHOD_NOT_ALLOWED);
	return http_reply_method(&s->http, conn, method, url, allow);
}

/* ---- the state ------------------------------------------------------------------ */

void
serve_state_init(Serve *s, const char *conninfo, int pool_max, long max_set_aside)
{
	pool_init(&s->pool, conninfo, pool_max, max_set_aside);
	pthread_mutex_init(&s->wakes.mu, NULL);
	pthread_cond_init(&s->wakes.cv, NULL);
	pthread_mutex_init(&s->trigger.mu, NULL);
	pthread_mutex_init(&s->bind_mu, NULL);
	pthread_mutex_init(&s->retry_mu, NULL);
	pthread_mutex_init(&s->count_mu, NULL);
	pthread_mutex_init(&s->up_mu, NULL);
	pthread_cond_init(&s->up_cv, NULL);
	pthread_mutex_init(&s->auth_mu, NULL);
	pthread_cond_init(&s->auth_cv, NULL);
	pthread_mutex_init(&s->rep_mu, NULL);
	s->started_us = now_us();
	snprintf(s->serve_id, sizeof(s->serve_id), "%08x%08x", (unsigned) getpid(),
			 (unsigned) (jitter01() * 4294967295.0));
}

void
serve_state_free(Serve *s)
{
	pool_close(&s->pool);
	for (int i = 0; i < s->nbind; i++)
	{
		free(s->bind_node[i]);
		free(s->bind_user[i]);
	}
	free(s->bind_node);
	free(s->bind_user);
}
