/*
 * sync.h — one full sync (sync.c).
 */
#ifndef SYNCQD_SYNC_H
#define SYNCQD_SYNC_H

#include "syncqd.h"

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
	int			down_rows;
	int			down_applied;
	int			down_conflicts;
	int			down_parked;	/* refused here: in our sync_errors */
	int			down_retried;
	bool		first_sync;
	bool		clone;
	bool		stopped;		/* a stop request skipped the download */
} SyncStats;

int			sync_once(Link *l, Client *cl, const SyncOptions *o, SyncStats *st,
					  char *err, size_t errlen);
void		sync_stats_text(const SyncStats *st, char *buf, size_t len);
int			sync_reidentify(Client *cl, char *err, size_t errlen);
int			client_reidentify(Client *cl, char *err, size_t errlen);

#endif							/* SYNCQD_SYNC_H */
