/*
 * apply.h — the decide-and-apply core of the hub side, shared by upload.c
 * and errors.c (apply.c). Not for other rooms: they go through hub.h.
 */
#ifndef SYNCQD_HUB_APPLY_H
#define SYNCQD_HUB_APPLY_H

#include "hub/hub.h"

/* What became of one change. */
typedef enum
{
	DONE_APPLIED,
	DONE_OVERRULED,				/* lost to a later change (sync_conflicts) */
	DONE_SUPERSEDED,			/* a retried change its own node changed since */
	DONE_FAILED					/* refused by the hub: why says why */
} Done;

typedef struct
{
	Done		done;
	char	   *why;
	char		sqlstate[6];
	char	   *note;			/* set aside with MET_SQLSTATE: what the
								 * uploader's own sync_errors says of it */
} Outcome;

/*
 * The SQLSTATE an insert that met another record is set aside with (and a
 * later change of that node's row), and by which its later changes find it
 * (apply.c, read_follows): syncq's own (class SQ is implementation-defined),
 * after 23505, the unique violation it would be in one database, which the
 * hub's own constraints raise too.
 */
#define MET_SQLSTATE "SQ505"

void		outcomes_free(Outcome *o, int n);

/*
 * Open an apply transaction: hub changes folded first (in a transaction of
 * the fold's own), the hub's clock read. client_now_us: the uploader's clock as it sent the changes
 * (0: unknown), for re-stamping a change stamped too far ahead.
 */
int			hub_apply_begin(Hub *h, int64_t client_now_us, char *err, size_t errlen);

/*
 * Decide and apply cs[0..n) (one client's, in seq order) inside the open
 * apply transaction; out[i] says what became of cs[i]; *notify is set when
 * an immediate change was applied. retry: set-aside changes tried again.
 */
int			hub_apply_changes(Hub *h, Change **cs, int n, Outcome *out, bool retry,
							  bool *notify, char *err, size_t errlen);

/* Set the failed ones of cs[0..n) aside in sync_errors. */
int			hub_park_changes(Hub *h, const char *client_id, Change **cs, const Outcome *out,
							 int n, char *err, size_t errlen);

/* Did a hub transaction overtake this one? 1 yes (h->up.overtaken, err), 0 no, -1 error. */
int			hub_overtaken(Hub *h, char *err, size_t errlen);

#endif							/* SYNCQD_HUB_APPLY_H */
