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
} Outcome;

void		outcomes_free(Outcome *o, int n);

/*
 * Open an apply transaction: the upload lock, hub changes folded, the hub's
 * clock read. client_now_us: the uploader's clock as it sent the changes
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
