/*
 * main.c — syncqd: ship a SQLite client's changes to a PostgreSQL hub and
 * the hub's changes back (docs/replication.md).
 *
 *   syncqd --sqlite FILE [--online URL] [--interval SECONDS] [--once]
 *   syncqd --sqlite FILE --reidentify
 */
#include "syncqd.h"
#include "client.h"
#include "hub.h"
#include "sync.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested = 0;

static void
on_stop(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static void
usage(void)
{
	printf("syncqd keeps a SQLite client database and a PostgreSQL hub in step.\n\n"
		   "Usage:\n"
		   "  syncqd --sqlite FILE [--online URL] [--interval SECONDS] [--once]\n"
		   "  syncqd --sqlite FILE --reidentify\n\n"
		   "Options:\n"
		   "  -s, --sqlite=FILE        the client database (a syncq-tracked SQLite file)\n"
		   "  -o, --online=URL         the hub: a postgresql:// URL or libpq conninfo\n"
		   "                           (default: $AMRS_ONLINE_URL)\n"
		   "  -i, --interval=SECONDS   time between syncs when running on (default 300)\n"
		   "  -1, --once               one full sync, then exit 0, or 1 with the reason\n"
		   "      --reidentify         give a copied client file a node id of its own\n"
		   "      --log-level=LEVEL    debug, info, warning or error (default info)\n"
		   "  -V, --version            print the version and exit\n"
		   "  -h, --help               show this help and exit\n");
}

static void
bad_args(const char *fmt, const char *arg)
{
	fputs("syncqd: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry \"syncqd --help\" for more information.\n", stderr);
	exit(1);
}

/* A hub address syncqd can use directly over libpq? */
static bool
is_libpq_target(const char *url)
{
	return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0 ||
		strchr(url, '=') != NULL;
}

static void
log_stats(const SyncStats *st, double secs)
{
	logmsg(LOG_INFO, "sync done in %.3f s: up %d applied, %d overruled, %d already there; down %d%s rows, %d applied, %d overruled",
		   secs, st->up_applied, st->up_conflicts, st->up_skipped, st->down_rows,
		   st->first_sync ? " (first sync)" : "", st->down_applied, st->down_conflicts);
}

static double
seconds_since(int64_t start)
{
	return (double) (now_us() - start) / 1e6;
}

/* Sleep up to secs, waking early when a stop is requested. */
static void
nap(double secs)
{
	while (secs > 0 && !stop_requested)
	{
		double		step = secs > 0.2 ? 0.2 : secs;
		struct timespec ts = {(time_t) step, (long) ((step - (double) (time_t) step) * 1e9)};

		nanosleep(&ts, NULL);
		secs -= step;
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sqlite", required_argument, NULL, 's'},
		{"online", required_argument, NULL, 'o'},
		{"interval", required_argument, NULL, 'i'},
		{"once", no_argument, NULL, '1'},
		{"reidentify", no_argument, NULL, 'R'},
		{"log-level", required_argument, NULL, 'L'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *sqlite_path = NULL,
			   *online = getenv("AMRS_ONLINE_URL");
	double		interval = 300;
	bool		once = false,
				reidentify = false;
	int			c;
	char		err[2048];
	Client	   *cl;

	while ((c = getopt_long(argc, argv, "s:o:i:1Vh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 's':
				sqlite_path = optarg;
				break;
			case 'o':
				online = optarg;
				break;
			case 'i':
				{
					char	   *end;

					errno = 0;
					interval = strtod(optarg, &end);
					if (errno || *end || end == optarg || interval <= 0 || interval > 86400 * 7)
						bad_args("invalid --interval \"%s\": give seconds, more than 0", optarg);
					break;
				}
			case '1':
				once = true;
				break;
			case 'R':
				reidentify = true;
				break;
			case 'L':
				if (strcmp(optarg, "debug") == 0)
					log_level = LOG_DEBUG;
				else if (strcmp(optarg, "info") == 0)
					log_level = LOG_INFO;
				else if (strcmp(optarg, "warning") == 0)
					log_level = LOG_WARNING;
				else if (strcmp(optarg, "error") == 0)
					log_level = LOG_ERROR;
				else
					bad_args("invalid --log-level \"%s\": debug, info, warning or error", optarg);
				break;
			case 'V':
				printf("syncqd %s\n", SYNCQD_VERSION);
				return 0;
			case 'h':
				usage();
				return 0;
			default:
				fputs("Try \"syncqd --help\" for more information.\n", stderr);
				return 1;
		}
	}
	if (optind < argc)
		bad_args("unexpected argument \"%s\"", argv[optind]);
	if (sqlite_path == NULL)
		bad_args("%s", "no client database: give --sqlite FILE");

	cl = client_open(sqlite_path, err, sizeof(err));
	if (cl == NULL)
	{
		fprintf(stderr, "syncqd: %s\n", err);
		return 1;
	}
	if (reidentify)
	{
		int			rc = sync_reidentify(cl, err, sizeof(err));

		if (rc < 0)
			fprintf(stderr, "syncqd: %s\n", err);
		else
			printf("%s\n", client_node_id(cl));
		client_close(cl);
		return rc < 0 ? 1 : 0;
	}
	if (online == NULL || *online == '\0')
	{
		client_close(cl);
		bad_args("%s", "no hub: give --online URL or set AMRS_ONLINE_URL");
	}
	if (!is_libpq_target(online))
	{
		client_close(cl);
		bad_args("--online \"%s\": this syncqd speaks to the hub over libpq only; give a postgresql:// URL or a conninfo string", online);
	}

	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	signal(SIGPIPE, SIG_IGN);

	logmsg(LOG_INFO, "client \"%s\", node %s", sqlite_path, client_node_id(cl));
	{
		Hub		   *h = NULL;
		double		backoff = 1;
		int			status = 0;

		while (!stop_requested)
		{
			SyncStats	st;
			int64_t		start = now_us();

			if (h == NULL && (h = hub_connect(online, err, sizeof(err))) == NULL)
				goto failed;
			if (sync_once(h, cl, &st, err, sizeof(err)) < 0)
			{
				if (st.clone)
				{
					fprintf(stderr, "syncqd: %s\n", err);
					status = 1;
					break;
				}
				if (PQstatus(h->conn) != CONNECTION_OK)
				{
					hub_close(h);
					h = NULL;
				}
				goto failed;
			}
			log_stats(&st, seconds_since(start));
			backoff = 1;
			if (once)
				break;
			nap(interval);
			continue;
	failed:
			if (once)
			{
				fprintf(stderr, "syncqd: %s\n", err);
				status = 1;
				break;
			}
			logmsg(LOG_WARNING, "sync failed, retrying in %.0f s: %s", backoff, err);
			nap(backoff);
			backoff = backoff * 2 > 60 ? 60 : backoff * 2;
		}
		hub_close(h);
		client_close(cl);
		return status;
	}
}
