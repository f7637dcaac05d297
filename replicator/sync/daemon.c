/*
 * daemon.c — syncqd running on: one loop that waits for a reason to sync,
 * syncs, and never gives up (docs/daemon.md).
 *
 * Reasons to sync:
 *   - the hub NOTIFYs channel sync_queue: an immediate change committed
 *     there (or relayed from another client), or sync_trigger() ("request");
 *   - the SQLite side: the wake file (an immediate commit of a connection
 *     that loaded syncq, or sync_trigger()), or PRAGMA data_version moved
 *     and the queue holds a new immediate change (a plain connection);
 *   - POST /api/sync/trigger on the control API;
 *   - the --interval timer, for batched changes;
 *   - starting, and getting the hub back after losing it.
 * Every sync ships everything pending both ways: batched changes travel
 * with any immediate sync. Wake-ups close together share one sync: a sync
 * starts SETTLE_US after the first wake-up, and at least GAP_US after the
 * previous one ended.
 *
 * Failures (the hub down or unreachable, the file locked by the app) are
 * retried after a capped exponential backoff with jitter; the connection is
 * made again as needed. A change either side refuses is set aside in
 * sync_errors by the sync itself and does not fail it.
 *
 * The loop waits in ppoll() on the hub's socket, the inotify descriptor and
 * the control API's eventfd, with a timeout from the nearest deadline;
 * before each wait it takes the NOTIFYs libpq has already read.
 * Signal handlers only set flags; the signals are blocked except inside
 * ppoll, so none is lost between the check and the wait.
 *
 *   daemon_run   the loop: request_sync, run_sync, poll_file,
 *                take_hub_news, wait_and_handle (static), until SIGTERM
 */
#include "base/base.h"
#include "client/client.h"
#include "client/watch.h"
#include "http/control.h"
#include "link/link.h"
#include "sync/daemon.h"
#include "sync/sync.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER INT64_MAX

/* A wake-up starts a sync this long after it, to catch its neighbours. */
#define SETTLE_US 1000

/* The least time between the end of a sync and the next wake-up sync. */
#define GAP_US 25000

/* PRAGMA data_version: how often, and how often just after a write. */
#define POLL_US 50000
#define FAST_POLL_US 2000
#define FAST_POLL_FOR_US 200000
#define WAKE_POLL_US 500			/* the wake file fired: its commit is near */

/* Backoff after a failed sync: from BACKOFF_MIN_S doubling to BACKOFF_MAX_S. */
#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0

/*
 * The wake file is written just before the commit it announces is visible:
 * syncqd syncs once data_version shows it, or after this long without (a
 * sync_trigger(), which commits nothing).
 */
#define WAKE_WAIT_US 50000

/* Set-aside changes are tried again this often (and on every trigger). */
#define ERROR_RETRY_US (10 * INT64_C(1000000))

/* The hub's conflict count for the status is refreshed this often. */
#define CONFLICT_COUNT_US (60 * INT64_C(1000000))

typedef struct
{
	const DaemonOptions *o;
	Client	   *cl;
	Link	   *h;
	Watch	   *w;
	Control    *ctl;

	int64_t		sync_at;		/* when the next sync starts, or NEVER */
	bool		force;			/* ... asked for by someone: retry errors too */
	const char *why;			/* ... the first reason, for the log */
	int64_t		retry_at;		/* no sync before this (backoff) */
	double		backoff;		/* seconds, the next delay's ceiling */
	int			failures;		/* in a row */
	int64_t		last_end;		/* when the last sync ended */
	int64_t		periodic_at;	/* the next --interval sync */
	int64_t		poll_at;		/* the next look at data_version */
	int64_t		fast_until;		/* poll fast until then */
	int64_t		wake_until;		/* the wake file fired: its commit is due */
	int64_t		errors_retry_at;	/* set-aside changes are due again */
	long		hub_errors;		/* the hub's sync_errors of ours; -1 unknown */
	int64_t		conflicts_at;	/* the hub's conflict count is due */
	bool		hub_was_lost;	/* log the reconnect */
	bool		synced_once;
} Loop;

static double
secs(int64_t us)
{
	return (double) us / 1e6;
}

/* Ask for a sync: soon after now, not before the gap or the backoff. */
static void
request_sync(Loop *l, int64_t now, const char *why, bool force)
{
	int64_t		at = now + SETTLE_US;

	if (l->last_end > 0 && at < l->last_end + GAP_US)
		at = l->last_end + GAP_US;
	if (at < l->retry_at)
		at = l->retry_at;
	if (at < l->sync_at)
	{
		l->sync_at = at;
		if (l->why == NULL)
			l->why = why;
	}
	if (l->sync_at != NEVER && l->why == NULL)
		l->why = why;
	l->force |= force;
}

/* One line per sync; one that moved nothing only at debug level. */
static void
log_stats(const SyncStats *st, double s, const char *why, bool always)
{
	bool		moved = st->up_applied || st->up_conflicts || st->up_skipped || st->up_parked ||
		st->up_retried || st->down_rows || st->down_retried || st->first_sync;
	char		what[512];

	sync_stats_text(st, what, sizeof(what));
	logmsg(moved || always ? LOG_INFO : LOG_DEBUG, "sync (%s) done in %.3f s: %s", why, s, what);
}

/* Forget the hub connection (it broke); the next sync makes a new one. */
static void
drop_hub(Loop *l)
{
	link_close(l->h);
	l->h = NULL;
	l->hub_was_lost = true;
	control_set_hub(l->ctl, NULL, false);
}

/* After a sync: what the hub holds set aside of ours, for the status. */
static void
refresh_hub_errors(Loop *l, const SyncStats *st, int64_t now)
{
	char		err[1024];
	long		n,
				conflicts = -1;
	HubError   *rows = NULL;
	int			nrows = 0;
	bool		want_conflicts = st->up_conflicts > 0 || now >= l->conflicts_at;

	/*
	 * Only this client's uploads set its changes aside on the hub: with none
	 * there and none set aside now, the count is still 0 (a request saved,
	 * over HTTP, on every sync).
	 */
	if (l->hub_errors == 0 && st->up_parked == 0 && !want_conflicts)
		return;

	if (l->h->ops->errors(l->h, client_node_id(l->cl), 20, &n, &rows, &nrows,
						  want_conflicts ? &conflicts : NULL, err, sizeof(err)) < 0)
	{
		logmsg(LOG_DEBUG, "reading the hub's sync_errors: %s", err);
		hub_errors_free(rows, nrows);
		return;
	}
	if (want_conflicts)
		l->conflicts_at = now + CONFLICT_COUNT_US;
	if (n > 0 && n != l->hub_errors)
		logmsg(LOG_WARNING, "the hub holds %ld changes of this client set aside in sync_errors (see GET /api/sync/status)", n);
	l->hub_errors = n;
	control_set_hub_errors(l->ctl, n, rows, nrows, conflicts);
}

/*
 * One sync attempt: connect if need be, sync, then either schedule the
 * next periodic sync or back off. Returns -1 only when syncqd must stop (a
 * cloned node id).
 */
static int
run_sync(Loop *l)
{
	int64_t		start = mono_us();
	SyncOptions so = {0};
	SyncStats	st = {0};
	char		err[2048] = "";
	const char *why = l->why ? l->why : "?";
	bool		errors_due = l->force || start >= l->errors_retry_at;

	so.retry_client_errors = errors_due;
	so.retry_hub_errors = errors_due && l->hub_errors != 0;
	l->sync_at = NEVER;
	l->force = false;
	l->why = NULL;

	if (l->h == NULL)
	{
		control_set_state(l->ctl, STATE_CONNECTING, 0);
		l->h = sync_connect(l->o->online, client_node_id(l->cl), true, err, sizeof(err));
		if (l->h == NULL)
			goto failed;
		logmsg(LOG_INFO, "%s the hub: %s, node %s",
			   l->hub_was_lost ? "connected again to" : "connected to",
			   l->h->where, l->h->hub_node_id);
		control_set_hub(l->ctl, l->h->hub_node_id, true);
	}
	control_set_state(l->ctl, STATE_SYNCING, 0);
	if (sync_once(l->h, l->cl, &so, &st, err, sizeof(err)) < 0)
	{
		if (st.clone)
		{
			logmsg(LOG_ERROR, "%s", err);
			control_sync_done(l->ctl, false, &st, secs(mono_us() - start), err);
			return -1;
		}
		goto failed;
	}
	if (errors_due)
		l->errors_retry_at = start + ERROR_RETRY_US;
	l->last_end = mono_us();
	log_stats(&st, secs(l->last_end - start), why, l->synced_once == false || l->failures > 0);
	l->synced_once = true;
	refresh_hub_errors(l, &st, l->last_end);
	/* wake-ups that came during the sync: taken before the next wait */
	control_sync_done(l->ctl, true, &st, secs(l->last_end - start), NULL);
	l->backoff = BACKOFF_MIN_S;
	l->failures = 0;
	l->retry_at = 0;
	l->periodic_at = start + (int64_t) (l->o->interval * 1e6);
	control_set_next_periodic(l->ctl, now_us() + (l->periodic_at - l->last_end));
	control_set_state(l->ctl, STATE_IDLE, 0);
	client_checkpoint(l->cl);
	return 0;

failed:
	{
		double		delay = l->backoff / 2 + jitter01() * l->backoff / 2;
		int64_t		now = mono_us();

		client_rollback(l->cl);
		client_checkpoint(l->cl);
		if (l->h)
			l->h->ops->abort(l->h);
		if (l->h && !l->h->ops->ok(l->h))
			drop_hub(l);
		l->failures++;
		l->last_end = now;
		l->retry_at = now + (int64_t) (delay * 1e6);
		l->backoff = l->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : l->backoff * 2;
		logmsg(LOG_WARNING, "sync (%s) failed (%d in a row), retrying in %.1f s: %s",
			   why, l->failures, delay, err);
		control_sync_done(l->ctl, false, &st, secs(now - start), err);
		control_set_state(l->ctl, STATE_RETRY_WAIT, now_us() + (l->retry_at - now));
		request_sync(l, now, "retry", false);
		return 0;
	}
}

static void
reopen_log(const DaemonOptions *o)
{
	char		err[512];

	if (o->log_file == NULL)
	{
		logmsg(LOG_DEBUG, "SIGHUP: no --log-file to reopen");
		return;
	}
	if (log_open(o->log_file, err, sizeof(err)) < 0)
		logmsg(LOG_ERROR, "SIGHUP: %s; logging on to the old file", err);
	else
		logmsg(LOG_INFO, "log file \"%s\" reopened", o->log_file);
}

/* Look at data_version now if it is time. */
static void
poll_file(Loop *l, int64_t now)
{
	char		err[1024];
	int			what;

	if (now < l->poll_at)
		return;
	what = watch_poll(l->w, err, sizeof(err));
	if (what < 0)
		logmsg(LOG_DEBUG, "%s", err);
	else if ((what & WATCH_CHANGED) && l->wake_until != NEVER)
	{
		request_sync(l, now, "the wake file", false);
		l->wake_until = NEVER;
	}
	else if (what & WATCH_IMMEDIATE)
		request_sync(l, now, "an immediate change in the file", false);
	l->poll_at = now + (l->wake_until != NEVER ? WAKE_POLL_US :
						now < l->fast_until ? FAST_POLL_US : POLL_US);
}

/*
 * The hub's wake-ups: a sync for changes on the hub or its sync_trigger().
 * Taken before every wait, not only when the socket is readable: libpq
 * reads a NOTIFY that comes while it runs any statement (a sync's, the
 * read of what the hub holds set aside), and then the socket stays quiet.
 */
static void
take_hub_news(Loop *l, int64_t now)
{
	int			changes = 0,
				requests = 0;
	char		err[1024];

	if (l->h == NULL)
		return;
	if (l->h->ops->consume(l->h, &changes, &requests, err, sizeof(err)) < 0)
	{
		logmsg(LOG_WARNING, "%s", err);
		drop_hub(l);
		control_set_state(l->ctl, STATE_CONNECTING, 0);
		request_sync(l, now, "reconnecting", false);
	}
	else if (requests)
		request_sync(l, now, "sync_trigger() on the hub", true);
	else if (changes)
		request_sync(l, now, "an immediate change on the hub", false);
}

/* Wait for the nearest deadline or an event; handle what arrived. */
static void
wait_and_handle(Loop *l, const sigset_t *block)
{
	struct pollfd pfd[3];
	int			npfd = 0,
				ihub = -1,
				iwatch = -1,
				ictl = -1;
	int64_t		now = mono_us();
	int64_t		until = l->poll_at;
	struct timespec ts;
	sigset_t	orig;
	int			rc;

	take_hub_news(l, now);
	if (l->sync_at < until)
		until = l->sync_at;
	if (l->periodic_at < until)
		until = l->periodic_at;
	if (l->wake_until < until)
		until = l->wake_until;
	if (until < now)
		until = now;
	ts.tv_sec = (time_t) ((until - now) / 1000000);
	ts.tv_nsec = (long) ((until - now) % 1000000) * 1000;

	if (l->h && l->h->ops->wake_fd(l->h) >= 0)
	{
		ihub = npfd;
		pfd[npfd++] = (struct pollfd)
		{
			l->h->ops->wake_fd(l->h), POLLIN, 0
		};
	}
	if (watch_fd(l->w) >= 0)
	{
		iwatch = npfd;
		pfd[npfd++] = (struct pollfd)
		{
			watch_fd(l->w), POLLIN, 0
		};
	}
	if (control_wake_fd(l->ctl) >= 0)
	{
		ictl = npfd;
		pfd[npfd++] = (struct pollfd)
		{
			control_wake_fd(l->ctl), POLLIN, 0
		};
	}

	/* signals only inside ppoll: none slips in between check and wait */
	sigprocmask(SIG_BLOCK, block, &orig);
	if (stop_requested || reopen_requested)
		rc = 0;
	else
		rc = ppoll(pfd, (nfds_t) npfd, &ts, &orig);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	if (rc < 0 && errno != EINTR)
		logmsg(LOG_ERROR, "ppoll: %s", strerror(errno));
	if (rc <= 0)
		return;					/* a deadline, or a signal: the loop looks */

	now = mono_us();
	if (ihub >= 0 && pfd[ihub].revents)
		take_hub_news(l, now);
	if (iwatch >= 0 && pfd[iwatch].revents)
	{
		int			what = watch_read(l->w);

		if ((what & WATCH_WAKE) && l->wake_until == NEVER)
			l->wake_until = now + WAKE_WAIT_US;
		if (what & (WATCH_WAKE | WATCH_WRITTEN))
		{
			if (now + WAKE_POLL_US < l->poll_at)
				l->poll_at = now + WAKE_POLL_US;
			l->fast_until = now + FAST_POLL_FOR_US;
		}
	}
	if (ictl >= 0 && pfd[ictl].revents && control_take_trigger(l->ctl))
		request_sync(l, now, "the control API", true);
}

/*
 * Run until SIGTERM/SIGINT (exit status 0) or a reason to stop for good
 * (1): a cloned node id, a control address that cannot be had.
 */
int
daemon_run(Client *cl, const DaemonOptions *o)
{
	Loop		l = {0};
	char		err[2048];
	sigset_t	block;
	int			status = 0;
	int64_t		now = mono_us();

	l.o = o;
	l.cl = cl;
	l.sync_at = NEVER;
	l.wake_until = NEVER;
	l.backoff = BACKOFF_MIN_S;
	l.hub_errors = -1;
	l.periodic_at = now + (int64_t) (o->interval * 1e6);
	l.poll_at = now + POLL_US;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);

	l.w = watch_open(cl, err, sizeof(err));
	if (l.w == NULL)
	{
		logmsg(LOG_ERROR, "%s", err);
		return 1;
	}
	if (o->control)
	{
		sigset_t	orig;

		/* the HTTP thread inherits the mask: signals come to this thread */
		pthread_sigmask(SIG_BLOCK, &block, &orig);
		l.ctl = control_start(o->control, cl->path, client_node_id(cl), o->origins, o->norigins,
							  err, sizeof(err));
		pthread_sigmask(SIG_SETMASK, &orig, NULL);
		if (l.ctl == NULL)
		{
			logmsg(LOG_ERROR, "%s", err);
			watch_close(l.w);
			return 1;
		}
	}
	logmsg(LOG_INFO, "syncqd %s running: client \"%s\", node %s, batched changes every %g s",
		   SYNCQD_VERSION, cl->path, client_node_id(cl), o->interval);
	request_sync(&l, now, "start", true);

	while (!stop_requested)
	{
		if (reopen_requested)
		{
			reopen_requested = 0;
			reopen_log(o);
		}
		now = mono_us();
		poll_file(&l, now);
		if (now >= l.wake_until)
		{
			request_sync(&l, now, "sync_trigger() on the client", true);
			l.wake_until = NEVER;
		}
		if (now >= l.periodic_at)
		{
			request_sync(&l, now, "the interval", false);
			l.periodic_at = NEVER;	/* set again when a sync succeeds */
		}
		if (now >= l.sync_at)
		{
			if (run_sync(&l) < 0)
			{
				status = 1;
				break;
			}
			continue;
		}
		wait_and_handle(&l, &block);
	}
	if (stop_requested)
		logmsg(LOG_INFO, "stopping on request");
	control_set_state(l.ctl, STATE_STOPPING, 0);
	control_stop(l.ctl);
	link_close(l.h);
	watch_close(l.w);
	return status;
}
