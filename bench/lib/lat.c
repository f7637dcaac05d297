/*
 * bench/lib/lat.c — the latency driver of bench parts 50 and 52, built by
 * them into their own directory.
 *
 * lat MODE FILE CONNINFO EXT N SPACING_MS FIRST_ID: the latency of N
 * immediate changes through a running syncqd, one per line, microseconds.
 *   up-ext    insert on a SQLite connection that loaded EXT; done when the
 *             hub NOTIFYs sync_queue (syncqd's upload commits with it)
 *   up-plain  the same from a connection that did not load it
 *   down      insert on the hub; done when the row is in the SQLite file
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die(const char *what, const char *msg)
{
	fprintf(stderr, "lat: %s: %s\n", what, msg);
	exit(1);
}

static void
exec_pg(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(sql, PQerrorMessage(c));
	PQclear(r);
}

/* Wait for a notification from another session; 0 on timeout. */
static int
wait_notify(PGconn *c, int timeout_ms)
{
	long long	end = now_us() + (long long) timeout_ms * 1000;

	for (;;)
	{
		PGnotify   *n;
		struct pollfd p = {PQsocket(c), POLLIN, 0};

		PQconsumeInput(c);
		while ((n = PQnotifies(c)) != NULL)
		{
			int			other = n->be_pid != PQbackendPID(c);

			PQfreemem(n);
			if (other)
				return 1;
		}
		if (now_us() > end)
			return 0;
		poll(&p, 1, 100);
	}
}

static void
drain(PGconn *c)
{
	PGnotify   *n;

	PQconsumeInput(c);
	while ((n = PQnotifies(c)) != NULL)
		PQfreemem(n);
}

int
main(int argc, char **argv)
{
	const char *mode = argv[1];
	int			n = atoi(argv[5]),
				spacing = atoi(argv[6]);
	long long	first = atoll(argv[7]);
	sqlite3    *db;
	PGconn	   *pg;
	char		sql[256];
	char	   *err = NULL;

	if (argc != 8)
		die("usage", "lat MODE FILE CONNINFO EXT N SPACING_MS FIRST_ID");
	if (sqlite3_open(argv[2], &db) != SQLITE_OK)
		die("open", sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	if (strcmp(mode, "up-ext") == 0)
	{
		sqlite3_enable_load_extension(db, 1);
		if (sqlite3_load_extension(db, argv[4], NULL, &err) != SQLITE_OK)
			die("load", err);
	}
	pg = PQconnectdb(argv[3]);
	if (PQstatus(pg) != CONNECTION_OK)
		die("connect", PQerrorMessage(pg));
	exec_pg(pg, "LISTEN sync_queue");
	for (int i = 0; i < n; i++)
	{
		long long	id = first + i,
					t0,
					t1;

		usleep((useconds_t) spacing * 1000);
		if (strncmp(mode, "up", 2) == 0)
		{
			drain(pg);
			snprintf(sql, sizeof(sql), "INSERT INTO lat VALUES (%lld, 'up')", id);
			t0 = now_us();
			if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
				die("insert", err);
			if (!wait_notify(pg, 10000))
				die("wait", "no NOTIFY from the hub within 10 s");
			t1 = now_us();
		}
		else
		{
			sqlite3_stmt *st;
			int			found = 0;

			snprintf(sql, sizeof(sql), "INSERT INTO lat VALUES (%lld, 'down')", id);
			t0 = now_us();
			exec_pg(pg, sql);
			snprintf(sql, sizeof(sql), "SELECT 1 FROM lat WHERE id = %lld", id);
			if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
				die("prepare", sqlite3_errmsg(db));
			while (!found)
			{
				found = sqlite3_step(st) == SQLITE_ROW;
				sqlite3_reset(st);
				if (!found)
				{
					if (now_us() - t0 > 10000000)
						die("wait", "the row did not arrive within 10 s");
					usleep(100);
				}
			}
			t1 = now_us();
			sqlite3_finalize(st);
		}
		printf("%lld\n", t1 - t0);
	}
	PQfinish(pg);
	sqlite3_close(db);
	return 0;
}
