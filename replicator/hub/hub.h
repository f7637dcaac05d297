/*
 * hub.h — the PostgreSQL side of syncqd: the hub's connection, its tracked
 * tables, uploads applied to it, downloads read from it, its wake-ups, the
 * changes it set aside (docs/replication.md).
 *
 *   conn.c      the connection; running statements on it
 *   tables.c    the tracked tables
 *   notify.c    the wake-ups of channel sync_queue, read and sent
 *   download.c  a download: snapshot, cursors, where a client stands
 *   upload.c    an upload: begin, pages, end
 *   apply.c     deciding and applying changes (apply.h; upload.c, errors.c)
 *   keys.c      keys the hub assigns: a client's new row renamed, followed
 *   errors.c    set-aside changes: retried, counted, listed
 *   nodes.c     which user a client node id belongs to
 *   link_pg.c   the hub as a Link, for a client over libpq (link_pg.h)
 *
 * Two rooms drive it: the libpq link in a client's syncqd, and syncqd
 * serve (http/serve.c) for clients over HTTP. Neither client/ nor link/
 * includes this header.
 */
#ifndef SYNCQD_HUB_H
#define SYNCQD_HUB_H

#include <libpq-fe.h>

#include "model/change.h"
#include "model/hubinfo.h"

/* An upload in progress (hub_upload_begin .. hub_upload_end). */
typedef struct
{
	char		client_id[NODE_ID_LEN + 1];
	int64_t		hub_seq;		/* the hub's up_seq for the client */
	int64_t		ack_seq;		/* ... and the client's: where it had its
								 * changes acknowledged (a resend after it) */
	uint64_t	hub_digest;
	uint64_t	digest;			/* running digest of what the client sent */
	bool		checked;		/* history checked against hub_digest */
	int64_t		new_seq;
	bool		notify;
	UploadStats stats;
	UploadMark *marks;			/* where the client may acknowledge, in order */
	int			nmarks;
	int			capmarks;
	int			since_mark;		/* changes since the last mark */
	bool		overtaken;		/* rolled back: a hub transaction overtook it */
	char	   *notes[10];		/* the first changes set aside, as logged */
	int			nnotes;
	int			notes_more;		/* ... and how many more */
	KeyRename  *renames;		/* keys renamed the client has not acknowledged,
								 * in seq order (keys.c) */
	int64_t    *rename_end;		/* of each: the seq of an insert of the old
								 * key after it (a new record), or INT64_MAX */
	int			nrenames;
	int			nstored;		/* renames[0..nstored) are in sync_key_renames */
	MetChange  *met;			/* changes set aside as meeting another
								 * record (MET_SQLSTATE), in seq order: the
								 * reply names them (upload.c) */
	int			nmet;
	bool		keep_keys;		/* the client cannot take renames (a 0.1.0
								 * syncqd, protocol 1): its inserts keep
								 * their keys, last writer wins, as 0.1.0 */
} HubUpload;

/* Statements hub_prep keeps prepared on a connection, at most. */
#define HUB_PREPARED_MAX 64

/* Transactions a connection remembers the end of (HubTxnEnd), at most. */
#define HUB_TXN_ENDS 16

/*
 * A transaction serve found going on past a page of changes, and its end
 * for a node (the greatest seq of its rows that node sees): the next pages
 * of a large transaction need not read it again. A committed transaction's
 * rows do not change.
 */
typedef struct
{
	char		node_id[NODE_ID_LEN + 1];
	int64_t		xid;			/* sync_xid_value(txid); 0: unused */
	int64_t		end;
} HubTxnEnd;

/* A page of changes (hub_changes_read). */
typedef struct
{
	PGresult   *res;			/* the changes (column 8: the transaction) */
	int			n;				/* rows of res in the page */
	bool		more;			/* more changes follow */
	int64_t    *txn_end;		/* [n]: the end of each one's transaction */
} HubChanges;

typedef struct Hub
{
	PGconn	   *conn;
	char		node_id[NODE_ID_LEN + 1];
	HubTable   *tables;			/* sorted by name (hub_load_tables) */
	int			ntables;
	HubUpload	up;
	char		sqlstate[6];	/* of the last failed statement, "" if none */
	NameMap		renamed;		/* names tracked tables had (sync_tables_renamed) */
	char	  **gone_logged;	/* "table.column" gone columns (and old table names) already logged */
	int			ngone_logged;
	int64_t		clock_us;		/* the hub's clock as the last download began */
	int64_t		wall_us;		/* ... its wall clock then (clock_timestamp()) */
	bool		row_json_fn;	/* the hub's syncq has sync_row_json() (0.2.0) */
	uint64_t	tables_digest;	/* of the tracked tables' columns and types as
								 * hub_load_tables last read them */
	long		max_set_aside;	/* a client's changes in sync_errors, at most
								 * (0: HUB_SET_ASIDE_MAX) */
	/* the open apply transaction (hub_apply_begin): the hub's clock then,
	 * sync_hub_state.max_offset, the uploader's clock offset if it said its
	 * time, and the last version it re-stamped (docs/replication.md) */
	int64_t		apply_now_us;
	int64_t		max_offset_us;
	char	   *folded;			/* sync_hub_state.fold_snapshot as it began */
	char	   *seen;			/* the snapshot its first versions were read
								 * in, with the hub's changes since folded
								 * (read_versions); NULL: none read yet */
	bool		offset_known;
	int64_t		client_now_us;	/* the uploader's clock as it sent (0: unknown) */
	int64_t		offset_us;		/* the uploader's clock minus the hub's */
	int64_t		restamped_to;
	/* the statements hub_prep prepared on this connection: hashes of their text */
	uint64_t	prepared[HUB_PREPARED_MAX];
	int			nprepared;
	bool		prep_off;		/* prepare no more (26000 came back) */
	bool		prep_stale;		/* drop them all once no transaction is open */
	HubTxnEnd	txn_ends[HUB_TXN_ENDS];	/* serve: see HubTxnEnd */
	int			txn_ends_next;	/* the slot to fill next */
} Hub;

/* A client's set-aside changes the hub keeps, at most, unless told otherwise. */
#define HUB_SET_ASIDE_MAX 10000

/* conn.c */
Hub		   *hub_connect(const char *conninfo, bool listen, char *err, size_t errlen);
bool		hub_conninfo_has_password(const char *conninfo);
void		hub_close(Hub *h);
void		hub_rollback(Hub *h);
bool		hub_ok(Hub *h);
int			hub_socket(Hub *h);
PGresult   *hub_run(Hub *h, const char *sql, int nparams, const char *const *params,
					ExecStatusType want, char *err, size_t errlen);
PGresult   *hub_prep(Hub *h, const char *sql, int nparams, const char *const *params,
					 ExecStatusType want, char *err, size_t errlen);
int			hub_exec(Hub *h, const char *sql, char *err, size_t errlen);
long		hub_number(Hub *h, const char *sql, const char *param, char *err, size_t errlen);
char	   *hub_quote_ident(Hub *h, const char *s);
void		hub_set_err(char *err, size_t errlen, const char *what, PGconn *conn);
void		hub_upload_forget(HubUpload *u);

/* tables.c */
int			hub_load_tables(Hub *h, char *err, size_t errlen);
HubTable   *hub_table(Hub *h, const char *name);
char	   *hub_rows_sql(Hub *h, const HubTable *t);

/* notify.c */
typedef enum
{
	HUB_WAKE_CHANGE,			/* immediate changes committed */
	HUB_WAKE_REQUEST			/* sync_trigger() */
} HubWake;

/* origin: the node whose upload made the changes, "" for the hub's own */
typedef void (*HubWakeFn) (void *arg, HubWake wake, const char *origin);

int			hub_consume(Hub *h, HubWakeFn on_wake, void *arg, char *err, size_t errlen);
int			hub_notify_upload(Hub *h, const char *client_id, char *err, size_t errlen);

/* download.c */
int			hub_download_begin(Hub *h, const char *position, char **snapshot, bool *behind,
							   char *err, size_t errlen);
int			hub_changes_open(Hub *h, const char *position, const char *target, int64_t done,
							 const char *client_id, char *err, size_t errlen);
int			hub_table_open(Hub *h, const HubTable *t, char *err, size_t errlen);
int			hub_changes_read(Hub *h, const char *position, const char *target, int64_t after,
							 const char *client_id, int limit, HubChanges *c, char *err,
							 size_t errlen);
void		hub_changes_free(HubChanges *c);
PGresult   *hub_fetch(Hub *h, const char *cursor, int n, char *err, size_t errlen);
int			hub_close_cursor(Hub *h, const char *cursor, char *err, size_t errlen);
long		hub_prune_if_due(Hub *h, char *err, size_t errlen);
int			hub_download_end(Hub *h, const char *client_id, const char *snapshot,
							 char *err, size_t errlen);
int			hub_note_position(Hub *h, const char *client_id, const char *snapshot,
							  char *err, size_t errlen);

/* upload.c */
int			hub_upload_begin(Hub *h, const char *client_id, int64_t ack_seq,
							 uint64_t ack_digest, int64_t client_now_us, char *err, size_t errlen);
int			hub_upload_chunk(Hub *h, const ChangeList *page, char *err, size_t errlen);
int			hub_upload_end(Hub *h, UploadStats *stats, char *err, size_t errlen);

/* keys.c */
int			hub_keys_load(Hub *h, const char *client_id, int64_t ack_seq, char *err, size_t errlen);
bool		hub_keys_follow(Hub *h, const HubTable *t, Change *c);
bool		hub_keys_unacked(Hub *h, const HubTable *t, int64_t k, int64_t seq);
/* Is key k of t free to take? 1 yes (and held by this upload), 0 no, -1 error. */
typedef int (*KeyClaim) (void *arg, const HubTable *t, int64_t k, char *err, size_t errlen);
int			hub_keys_assign(Hub *h, const HubTable *t, Change *c, int64_t old, int64_t floor,
							KeyClaim claim, void *arg, char *err, size_t errlen);
int			hub_seqs_ahead(Hub *h, const char *seqs, char *err, size_t errlen);
int			hub_keys_store(Hub *h, char *err, size_t errlen);

/* errors.c */
int			hub_retry_errors(Hub *h, const char *client_id, UploadStats *stats,
							 char *err, size_t errlen);
long		hub_count_errors(Hub *h, const char *client_id, char *err, size_t errlen);
int			hub_list_errors(Hub *h, const char *client_id, int max, const int64_t *seqs,
							int nseqs, HubError **rows, char *err, size_t errlen);
long		hub_count_conflicts(Hub *h, const char *client_id, char *err, size_t errlen);

/* nodes.c */
int			hub_bind_node(Hub *h, const char *node_id, const char *user, char **owner,
						  char *err, size_t errlen);

#endif							/* SYNCQD_HUB_H */
