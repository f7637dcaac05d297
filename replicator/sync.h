/*
 * sync.h — one full sync (sync.c).
 */
#ifndef SYNCQD_SYNC_H
#define SYNCQD_SYNC_H

#include "syncqd.h"

typedef struct
{
	int			pending;		/* local changes found */
	int			up_applied;
	int			up_conflicts;
	int			up_skipped;
	int			down_rows;
	int			down_applied;
	int			down_conflicts;
	bool		first_sync;
	bool		clone;
} SyncStats;

int			sync_once(Hub *h, Client *cl, SyncStats *st, char *err, size_t errlen);
int			sync_reidentify(Client *cl, char *err, size_t errlen);
int			client_reidentify(Client *cl, char *err, size_t errlen);

#endif							/* SYNCQD_SYNC_H */
