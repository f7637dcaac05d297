/*
 * command.c — the syncqd command: ship a SQLite client's changes to a
 * PostgreSQL hub and the hub's changes back (docs/replication.md), once or
 * as a daemon (docs/daemon.md).
 *
 *   syncqd --sqlite FILE [--online URL] [--interval SECONDS] [--control HOST:PORT] [--once]
 *   syncqd --sqlite FILE --reidentify
 *
 *   syncqd_main   the options, the lock on the file, then one of: a new
 *                 node id, one sync (--once), the daemon (daemon.c)
 */
#include "base/base.h"
#include "base/buf.h"
#include "client/client.h"
#include "http/control.h"
#include "link/link_http.h"
#include "sync/daemon.h"
#include "sync/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void
usage(void)
{
	printf("syncqd keeps a SQLite client database and a PostgreSQL hub in step.\n\n"
		   "Usage:\n"
		   "  syncqd --sqlite FILE [--online URL] [OPTION]...\n"
		   "  syncqd --sqlite FILE --reidentify\n"
		   "  syncqd serve --postgres CONNINFO --listen HOST:PORT [OPTION]...\n"
		   "  syncqd passwd USER\n\n"
		   "Connection:\n"
		   "  -s, --sqlite=FILE        the client database (a syncq-tracked SQLite file)\n"
		   "  -o, --online=URL         the hub: a postgresql:// URL or libpq conninfo\n"
		   "                           (direct), or the https:// URL of a syncqd serve\n"
		   "                           (default: $AMRS_ONLINE_URL); over HTTP(S) the\n"
		   "                           credentials are $AMRS_ADMIN_USERNAME and\n"
		   "                           $AMRS_ADMIN_PASSWORD\n"
		   "      --cacert=FILE        check serve's certificate against these CAs\n"
		   "                           (PEM) instead of the system's\n\n"
		   "Running:\n"
		   "  -1, --once               one full sync, then exit 0, or 1 with the reason\n"
		   "  -i, --interval=SECONDS   how often batched changes ship (default 300);\n"
		   "                           immediate changes ship as soon as they commit\n"
		   "  -c, --control=HOST:PORT  the control API (default " CONTROL_DEFAULT ");\n"
		   "                           \"off\" for none\n"
		   "      --allow-origin=ORIGIN  an origin of the app's pages that may use the\n"
		   "                           control API (auto_sync.js), e.g.\n"
		   "                           https://app.example.org; repeat for more\n"
		   "      --reidentify         give a copied client file a node id of its own\n\n"
		   "Logging:\n"
		   "  -l, --log-file=FILE      log there instead of stderr; SIGHUP reopens it\n"
		   "      --log-level=LEVEL    debug, info, warning or error (default info)\n\n"
		   "Other:\n"
		   "  -V, --version            print the version and exit\n"
		   "  -h, --help               show this help and exit\n\n"
		   "Signals: SIGTERM or SIGINT finish the transaction at hand and exit 0;\n"
		   "SIGHUP reopens the log file.\n");
}

static void
bad_args(const char *fmt, const char *arg)
{
	fputs("syncqd: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry \"syncqd --help\" for more information.\n", stderr);
	exit(1);
}

static void
log_stats(const SyncStats *st, double secs)
{
	char		what[512];

	sync_stats_text(st, what, sizeof(what));
	logmsg(LOG_INFO, "sync done in %.3f s: %s", secs, what);
}

/*
 * One syncqd per client file: an flock on <file>-syncqd.lock (of the file's
 * real path), held until exit, with our pid in it for the message the next
 * one gets. Returns the descriptor, or -1 with err.
 */
static int
take_lock(const char *path, char *err, size_t errlen)
{
	char		real[PATH_MAX];
	Buf			lock = {0};
	int			fd;

	if (realpath(path, real) == NULL)
	{
		snprintf(err, errlen, "cannot find \"%s\": %s", path, strerror(errno));
		return -1;
	}
	buf_printf(&lock, "%s-syncqd.lock", real);
	fd = open(lock.p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		snprintf(err, errlen, "cannot open lock file \"%s\": %s", lock.p, strerror(errno));
		buf_free(&lock);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
	{
		char		pid[32] = "";
		ssize_t		n = pread(fd, pid, sizeof(pid) - 1, 0);

		if (errno == EWOULDBLOCK)
		{
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			snprintf(err, errlen, "another syncqd%s%s%s is already running on \"%s\" (it holds \"%s\"); two would ship the same changes",
					 pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", path, lock.p);
		}
		else
			snprintf(err, errlen, "cannot lock \"%s\": %s", lock.p, strerror(errno));
		close(fd);
		buf_free(&lock);
		return -1;
	}
	if (ftruncate(fd, 0) == 0)
		dprintf(fd, "%ld\n", (long) getpid());
	buf_free(&lock);
	return fd;
}

/* --once: one full sync, exit 0 on success, 1 with the reason. */
static int
run_once(Client *cl, const char *online)
{
	SyncOptions so = {.retry_hub_errors = true, .retry_client_errors = true};
	SyncStats	st;
	char		err[2048];
	int64_t		start = now_us();
	Link	   *l = sync_connect(online, client_node_id(cl), false, err, sizeof(err));
	int			rc;

	if (l == NULL)
	{
		fprintf(stderr, "syncqd: %s\n", err);
		return 1;
	}
	rc = sync_once(l, cl, &so, &st, err, sizeof(err));
	link_close(l);
	if (rc < 0)
	{
		fprintf(stderr, "syncqd: %s\n", err);
		return 1;
	}
	if (st.stopped)
	{
		fprintf(stderr, "syncqd: stopped by a signal before the sync was complete\n");
		return 1;
	}
	log_stats(&st, (double) (now_us() - start) / 1e6);
	return 0;
}

/* What the command line says. */
typedef struct
{
	const char *sqlite_path;
	bool		once;
	bool		reidentify;
	bool		online_hidden;	/* --online held a password, now hidden in argv */
	DaemonOptions d;
} Options;

/* The command line into o; exits 1 with the reason if it is wrong, 0 after
 * --help or --version. */
static void
parse_options(int argc, char **argv, Options *o)
{
	static const struct option opts[] = {
		{"sqlite", required_argument, NULL, 's'},
		{"online", required_argument, NULL, 'o'},
		{"cacert", required_argument, NULL, 'A'},
		{"interval", required_argument, NULL, 'i'},
		{"control", required_argument, NULL, 'c'},
		{"allow-origin", required_argument, NULL, 'O'},
		{"once", no_argument, NULL, '1'},
		{"reidentify", no_argument, NULL, 'R'},
		{"log-file", required_argument, NULL, 'l'},
		{"log-level", required_argument, NULL, 'L'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *online = getenv("AMRS_ONLINE_URL");
	static const char *origins[32];
	char		err[2048];
	int			c;

	*o = (Options) {.d = {.interval = 300, .control = CONTROL_DEFAULT}};
	while ((c = getopt_long(argc, argv, "s:o:i:c:1l:Vh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 's':
				o->sqlite_path = optarg;
				break;
			case 'o':
				online = optarg;
				if (online_has_password(optarg))
				{
					static char *copy;	/* reachable: no leak at exit */

					free(copy);
					online = copy = arg_take_secret(optarg);
					o->online_hidden = true;
				}
				break;
			case 'A':
				if (access(optarg, R_OK) != 0)
					bad_args("--cacert \"%s\": cannot read it", optarg);
				link_http_cacert = optarg;
				break;
			case 'i':
				{
					char	   *end;

					errno = 0;
					o->d.interval = strtod(optarg, &end);
					if (errno || *end || end == optarg || !(o->d.interval >= 0.05) || o->d.interval > 86400 * 7)
						bad_args("invalid --interval \"%s\": give seconds, from 0.05 to a week", optarg);
					break;
				}
			case 'c':
				o->d.control = strcmp(optarg, "off") == 0 || strcmp(optarg, "none") == 0 ? NULL : optarg;
				if (o->d.control && control_check_address(o->d.control, err, sizeof(err)) < 0)
					bad_args("%s", err);
				break;
			case 'O':
				if (control_check_origin(optarg, err, sizeof(err)) < 0)
					bad_args("%s", err);
				if (o->d.norigins == (int) (sizeof(origins) / sizeof(origins[0])))
					bad_args("%s", "too many --allow-origin (32 at most)");
				origins[o->d.norigins++] = optarg;
				o->d.origins = origins;
				break;
			case '1':
				o->once = true;
				break;
			case 'R':
				o->reidentify = true;
				break;
			case 'l':
				o->d.log_file = optarg;
				break;
			case 'L':
				if (log_level_set(optarg) < 0)
					bad_args("invalid --log-level \"%s\": debug, info, warning or error", optarg);
				break;
			case 'V':
				printf("syncqd %s\n", SYNCQD_VERSION);
				exit(0);
			case 'h':
				usage();
				exit(0);
			default:
				fputs("Try \"syncqd --help\" for more information.\n", stderr);
				exit(1);
		}
	}
	if (optind < argc)
		bad_args("unexpected argument \"%s\"", argv[optind]);
	if (o->sqlite_path == NULL)
		bad_args("%s", "no client database: give --sqlite FILE");
	if (!o->reidentify)
	{
		if (online == NULL || *online == '\0')
			bad_args("%s", "no hub: give --online URL or set AMRS_ONLINE_URL");
		if (!online_is_libpq(online) && !online_is_http(online))
			bad_args("%s", "--online is neither a postgresql:// URL, a libpq conninfo string nor an http:// or https:// URL of a syncqd serve (not shown: it may hold a password)");
	}
	o->d.online = online;
}

/*
 * syncqd: the options, the log, the signals, the lock on the file, the
 * file; then a new node id (--reidentify), one sync (--once) or the daemon.
 */
int
syncqd_main(int argc, char **argv)
{
	Options		o;
	char		err[2048];
	int			lock,
				status;
	Client	   *cl;

	parse_options(argc, argv, &o);
	if (o.d.log_file && log_open(o.d.log_file, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "syncqd: %s\n", err);
		return 1;
	}
	if (o.online_hidden)
		logmsg(LOG_WARNING, "--online holds a password, which every local user could read in syncqd's command line until syncqd hid it just now: give it in a password file (PGPASSFILE, ~/.pgpass) or $PGPASSWORD instead");
	signals_install();
	lock = take_lock(o.sqlite_path, err, sizeof(err));
	if (lock < 0)
	{
		fprintf(stderr, "syncqd: %s\n", err);
		return 1;
	}
	cl = client_open(o.sqlite_path, err, sizeof(err));
	if (cl == NULL)
	{
		fprintf(stderr, "syncqd: %s\n", err);
		close(lock);
		return 1;
	}
	if (o.reidentify)
	{
		status = client_reidentify(cl, err, sizeof(err)) < 0 ? 1 : 0;
		if (status)
			fprintf(stderr, "syncqd: %s\n", err);
		else
			printf("%s\n", client_node_id(cl));
	}
	else if (o.once)
		status = run_once(cl, o.d.online);
	else
		status = daemon_run(cl, &o.d);
	client_close(cl);
	close(lock);
	return status;
}
