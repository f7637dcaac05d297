/*
 * sync.h — one full sync between a client file and the hub, over a Link.
 *
 *   sync.c      one sync: up, down, first sync (docs/replication.md)
 *   connect.c   the link --online names
 *   daemon.c    syncqd running on (daemon.h)
 *   command.c   the syncqd command line (daemon.h)
 */
#ifndef SYNCQD_SYNC_H
#define SYNCQD_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "client/client.h"
#include "link/link.h"

/* What a sync should do besides the changes. */
typedef struct
{
	bool		retry_hub_errors;	/* try this client's set-aside uploads again */
	bool		retry_client_errors;	/* try the set-aside downloads again */
} SyncOptions;

typedef struct
{
	int			pending;		/* local changes found */
	int			up_applied;
	int			up_conflicts;
	int			up_skipped;
	int			up_parked;		/* refused by the hub: in its sync_errors */
	int			up_retried;		/* set-aside uploads that went through */
	int			renamed;		/* rows given a new key by the hub, renamed here */
	int			down_rows;
	int			down_applied;
	int			down_conflicts;
	int			down_parked;	/* refused here: in our sync_errors */
	int			down_retried;
	bool		first_sync;
	bool		clone;
	bool		stopped;		/* a stop request skipped the download */
	bool		clock_known;	/* the hub told its clock this sync */
	int64_t		clock_offset_us;	/* ours minus the hub's (+: ahead) */
} SyncStats;

/* sync.c */
int			sync_once(Link *l, Client *cl, const SyncOptions *o, SyncStats *st,
					  char *err, size_t errlen);
void		sync_clock_text(int64_t offset_us, char *buf, size_t len);
void		sync_stats_text(const SyncStats *st, char *buf, size_t len);

/* connect.c */
bool		online_is_libpq(const char *online);
bool		online_is_http(const char *online);
bool		online_has_password(const char *online);
Link	   *sync_connect(const char *online, const char *client_id, bool listen,
						 char *err, size_t errlen);

#endif							/* SYNCQD_SYNC_H */
