/*
 * link.h — how a sync reaches the hub: the Link interface. Two links
 * implement it: directly over libpq (hub/link_pg.c, the hub's own code) or
 * through `syncqd serve` over HTTP(S) (link/link_http.c). The model of a
 * sync (sync/sync.c, docs/replication.md) is the same on both; only the
 * transport differs (docs/http.md). sync/connect.c picks one for --online.
 *
 *   page.c       the pages a link hands down (link_page_*)
 *   link_http.c  the HTTP link (link_http.h)
 *   proto.c      the messages of the HTTP link, both ways (proto.h)
 *
 * Nothing here includes the hub's headers: what the hub tells a client is
 * in model/hubinfo.h.
 */
#ifndef SYNCQD_LINK_H
#define SYNCQD_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/change.h"
#include "model/hubinfo.h"

/*
 * A page a link hands down: the hub's changes (changes_next), or rows of a
 * table for a first sync (rows_next), parsed by the one JSON codec.
 */
typedef struct
{
	ChangeList	changes;		/* in seq order */
	int64_t    *txn_end;		/* of each: the greatest seq of its hub transaction */
	int			captxn;
	JObject    *rows;
	int			nrows;
	int			caprows;
	bool		more;			/* another page follows */
} LinkPage;

void		link_page_reset(LinkPage *p);
void		link_page_free(LinkPage *p);
Change	   *link_page_push_change(LinkPage *p, int64_t txn_end);
JObject    *link_page_push_row(LinkPage *p);

typedef struct Link Link;

typedef struct
{
	/* The hub's tracked tables into l->tables; set-aside uploads retried. */
	int			(*hello) (Link *l, const char *client_id, bool retry_errors,
						  UploadStats *retried, char *err, size_t errlen);
	/* An upload: one hub transaction; l->marks says what to acknowledge. */
	int			(*up_begin) (Link *l, const char *client_id, int64_t ack_seq,
							 uint64_t ack_digest, int64_t now_us, char *err, size_t errlen);
	int			(*up_chunk) (Link *l, const ChangeList *page, char *err, size_t errlen);
	int			(*up_end) (Link *l, UploadStats *st, char *err, size_t errlen);
	/* A download: the snapshot that will be the client's next position. */
	int			(*down_begin) (Link *l, const char *position, char **snapshot,
							   bool *behind, char *err, size_t errlen);
	int			(*changes_open) (Link *l, const char *position, const char *target,
								 int64_t done, const char *client_id, char *err, size_t errlen);
	int			(*changes_next) (Link *l, LinkPage *p, char *err, size_t errlen);
	int			(*changes_close) (Link *l, char *err, size_t errlen);
	int			(*rows_open) (Link *l, const HubTable *t, char *err, size_t errlen);
	int			(*rows_next) (Link *l, LinkPage *p, char *err, size_t errlen);
	int			(*rows_close) (Link *l, char *err, size_t errlen);
	/* The client stands at position stored; prune the hub if due. */
	int			(*down_end) (Link *l, const char *client_id, const char *stored,
							 long *pruned, char *err, size_t errlen);
	/* What the hub holds set aside of this client's changes; conflicts
	 * (-1: not asked for). */
	int			(*errors) (Link *l, const char *client_id, int max, long *count,
						   HubError **rows, int *nrows, long *conflicts, char *err, size_t errlen);
	/* Which of this client's changes seqs[0..n) (ascending) the hub holds
	 * set aside still: held[i] (client/errors.c, client_settle_met). */
	int			(*held) (Link *l, const char *client_id, const int64_t *seqs, int n,
						 bool *held, char *err, size_t errlen);
	void		(*abort) (Link *l);		/* give up what is open */
	bool		(*ok) (Link *l);		/* usable for the next sync */
	int			(*wake_fd) (Link *l);	/* readable when the hub has news; -1 */
	int			(*consume) (Link *l, int *changes, int *requests, char *err, size_t errlen);
	void		(*close) (Link *l);
} LinkOps;

struct Link
{
	const LinkOps *ops;
	char		hub_node_id[NODE_ID_LEN + 1];
	char		where[256];		/* for the log: what we are connected to */
	HubTable   *tables;			/* sorted by name (after hello) */
	int			ntables;
	const UploadMark *marks;	/* after up_end */
	int			nmarks;
	const KeyRename *renames;	/* after up_end: keys the hub gave this
								 * client's new rows, not yet acknowledged */
	int			nrenames;
	const MetChange *met;		/* after up_end: the changes it set aside as
								 * meeting another record, for the client's
								 * own sync_errors */
	int			nmet;
	bool		clone;			/* the hub refused us as a copy of another node */
	bool		overtaken;		/* the upload was rolled back: try it again */
	bool		tables_changed; /* a hello folded into a request found the
								 * hub's tables changed: nothing was done,
								 * the link holds the new ones; sync again */
	UploadStats late_retried;	/* what a hello folded into a later request
								 * retried (hello's *retried says 0 then) */
	int64_t		hub_clock_us;	/* after down_begin: the hub's clock, above
								 * every version of the snapshot (0: unknown) */
	int64_t		hub_wall_us;	/* ... its wall clock alone (0: unknown) */
};

/* Close a link (NULL: nothing). */
static inline void
link_close(Link *l)
{
	if (l)
		l->ops->close(l);
}

#endif							/* SYNCQD_LINK_H */
