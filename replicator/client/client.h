/*
 * client.h — the SQLite side of syncqd: the client file, its queue, the
 * hub's changes applied to it, its node id, its wake-ups.
 *
 *   client.c     the file: open, syncqd's tables, schema, positions
 *   queue.c      the pending local changes: read, acknowledged
 *   apply.c      the hub's changes applied, last writer wins
 *   write.c      one row written the way SQLite apps read it
 *   errors.c     the hub's changes this file refused (sync_errors)
 *   capture.c    syncqd's own writes kept out of capture
 *   identity.c   a copied file's new node id
 *   keys.c       rows renamed to the keys the hub gave them
 *   watch.c      the wake-ups: the wake file, data_version (watch.h)
 *
 * Nothing here includes the hub's headers.
 */
#ifndef SYNCQD_CLIENT_H
#define SYNCQD_CLIENT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/change.h"
#include "model/hubinfo.h"
#include "model/json.h"
#include "model/value.h"

typedef struct Client Client;

/*
 * A foreign key the client table declares (PRAGMA foreign_key_list): the
 * hub's changes are checked against it whatever PRAGMA foreign_keys says
 * (apply.c; docs/replication.md, Foreign keys).
 */
typedef struct
{
	char	   *parent;			/* the table it refers to */
	int			n;				/* its columns */
	int		   *col;			/* ... in the child: index in cols */
	char	  **pcol;			/* ... in the parent */
	sqlite3_stmt *probe;		/* SELECT 1 FROM parent WHERE pcol = ?.. */
} ClientFk;

/*
 * A client table as its schema says: its stored columns (generated ones
 * apart: syncqd never writes them), and, once the hub's types are known,
 * how each column's values are written (docs/replication.md, Types).
 */
typedef struct
{
	char	   *name;
	int			ncols;
	char	  **cols;
	int		   *is_pk;			/* 0, or position in the primary key (1-based) */
	int			npk;
	NameMap		gone;			/* columns it had and has no more */
	bool	   *gone_logged;	/* each said in the log already */
	bool		renamed_logged; /* a change under an old name: said already */
	char	  **gencols;		/* generated columns */
	int			ngen;
	char	   *forms;			/* syncq_tracked.forms, or NULL */
	bool		typed;			/* kind and form below are set */
	ValueKind  *kind;			/* per column: of the hub column's type */
	ValueForm  *form;			/* per column: its form */
	int			nuuidkey;		/* key columns of hub type uuid */
	bool		fks_read;		/* fks below are read */
	ClientFk   *fks;			/* its foreign keys, to check the hub's rows */
	int			nfks;
} ClientTable;

/* How client_try_change is called (apply.c). */
typedef enum
{
	TRY_LIVE,					/* a change as it comes in a download */
	TRY_RETRY,					/* one set aside in sync_errors, again */
	TRY_HELD					/* one held for its parent, at the part's end */
} TryMode;

/* The hub's column types, which decide conversions (docs/replication.md). */
typedef struct
{
	struct
	{
		char	   *table;
		char	   *col;
		char	   *type;
	}		   *e;
	int			n;
} HubTypes;

/* A value of this node's, to be given the hub's spelling (respell.c). */
typedef struct
{
	int64_t		seq;			/* of the change that shipped it */
	char	   *table;
	char	   *pk_json;		/* the row's key, as the queue holds it */
	JField		old;			/* the value as the file holds it */
	JField		hub;			/* ... and as the hub spells it */
} Respell;

struct Client
{
	sqlite3    *db;
	char	   *path;
	char		node_id[NODE_ID_LEN + 1];
	ClientTable *tables;
	int			ntables;
	struct
	{
		char	   *key;
		sqlite3_stmt *st;
	}		   *stmts;
	int			nstmts;
	sqlite3_stmt *get_version;
	sqlite3_stmt *put_version;
	sqlite3_stmt *put_conflict;
	VerMap		local;			/* pending local versions, during an apply */
	int64_t		local_seen;		/* ... read from the queue up to this seq */
	sqlite3_stmt *pending;		/* the open pending read */
	bool		pending_done;	/* it returned its last row */
	bool		pending_held;	/* it stands on a row not yet returned */
	int64_t		pending_txid;	/* txid of the last row returned (0: none) */
	int64_t		pending_reach;	/* the last seq of a row the hub transaction holds */
	int64_t		pending_hub_seq;	/* the hub holds changes up to here (up_hub_seq) */
	int64_t    *malformed;		/* queue rows the pending read could not read */
	char	  **malformed_why;	/* ... and why */
	int			nmalformed;
	int64_t		schema_version; /* PRAGMA schema_version capture follows */
	int64_t		fill_upto;		/* the last sync_fill() covered the queue up to here */
	int64_t		fill_goal;		/* ... and is to cover it up to here */
	VerMap		fill_again;		/* rows changed more than once: the seq (us) of the last */
	int			saved_paused;	/* the pause setting before an apply */
	int64_t		down_stored_at; /* mono_us() of the last position stored */
	int64_t		taken_at;		/* mono_us() syncqd last took the write lock */
	int64_t		freed_at;		/* ... and last let it go (0: never) */
	int64_t		held_us;		/* how long it held it since its last pause,
								 * less half the shorter gaps (client_begin_write) */
	int64_t		data_version;	/* PRAGMA data_version when it last took it */
	int64_t		app_wrote_at;	/* mono_us() it last saw another connection's
								 * commit (0: never) */
	bool		checkpoint_due; /* the WAL is long enough to checkpoint after
								 * the sync (client_checkpoint) */
	int64_t		clock_us;		/* the greatest version seen from the hub: the
								 * floor of this file's clock (syncq_state.next) */
	int64_t    *bounds;			/* seqs that ended a snapshot, ascending */
	int			nbounds;
	Respell    *respell;		/* values uploaded, to be spelt as the hub's */
	int			nrespell;
	ChangeList	held;			/* hub changes whose parent is missing, held
								 * to the end of the apply part (apply.c) */
	const HubTypes *held_types; /* ... and the hub's types they are written by */
	int			held_applied;	/* what became of the held changes since */
	int			held_overruled; /* client_take_settled: applied at the end of */
	int			held_parked;	/* their part, overruled, set aside */
	NameMap		fk_warned;		/* tables whose foreign keys were said unreadable */
};

/* client.c */
Client	   *client_open(const char *path, char *err, size_t errlen);
void		client_close(Client *cl);
const char *client_node_id(Client *cl);
ClientTable *client_table(Client *cl, const char *name);
int			client_col(const ClientTable *t, const char *col);
bool		client_col_generated(const ClientTable *t, const char *col);
const ClientFk *client_table_fks(Client *cl, ClientTable *t, int *n);
void		client_reset_cache(Client *cl);
int			client_follow_schema(Client *cl, char *err, size_t errlen);

int			client_get_up(Client *cl, int64_t *seq, uint64_t *digest);
char	   *client_get_down(Client *cl);
void		client_get_down_partial(Client *cl, char **target, int64_t *done);

/* client.c: syncqd's write transactions, paced */
int			client_begin_write(Client *cl, char *err, size_t errlen);
int			client_commit_write(Client *cl, char *err, size_t errlen);
void		client_rollback_write(Client *cl);
bool		client_pace_due(const Client *cl);
bool		client_app_writes(const Client *cl);
void		client_checkpoint(Client *cl);

/* queue.c */
int			client_fill_queue(Client *cl, bool first, char *err, size_t errlen);
int			client_pending_open(Client *cl, int64_t after_seq, char *err, size_t errlen);
int			client_pending_next(Client *cl, ChangeList *page, int max, bool *boundary,
								char *err, size_t errlen);
bool		client_pending_more(Client *cl);
void		client_note_boundary(Client *cl, int64_t seq);
bool		client_is_boundary(Client *cl, int64_t seq);
void		client_pending_close(Client *cl);
int			client_set_aside_malformed(Client *cl, int64_t upto, char *err, size_t errlen);
int			client_ack_upload(Client *cl, int64_t from_seq, int64_t up_seq,
							  uint64_t up_digest, int64_t hub_seq,
							  const KeyRename *renames, int nrenames,
							  const MetChange *met, int nmet, char *err, size_t errlen);

/* keys.c */
int			client_rename_keys(Client *cl, const KeyRename *renames, int n,
							   char *err, size_t errlen);
int64_t		client_renamed_keys(Client *cl, char *last, size_t lastlen);
int			client_forget_unshipped(Client *cl, char *err, size_t errlen);

/* respell.c */
void		client_respell_note(Client *cl, const ChangeList *page, const HubTypes *types);
int			client_respell_apply(Client *cl, int64_t up_seq, const HubTypes *types,
								 char *err, size_t errlen);
void		client_respell_clear(Client *cl);

/* apply.c */
int			client_begin_apply(Client *cl, char *err, size_t errlen);
int			client_commit_apply(Client *cl, const char *down_snapshot, const char *target,
								int64_t done, char *err, size_t errlen);
void		client_rollback(Client *cl);
int			client_apply_change(Client *cl, Change *c, const HubTypes *types,
								char *err, size_t errlen);
void		client_take_settled(Client *cl, int *applied, int *overruled, int *parked);
bool		client_in_apply(Client *cl);
void		client_observe_clock(Client *cl, int64_t us);
bool		client_position_stale(Client *cl);

/* write.c */
int			client_write_row(Client *cl, ClientTable *t, bool del, const JObject *o,
							 const HubTypes *types, char *err, size_t errlen);
int			client_clear_table(Client *cl, const ClientTable *t, char *err, size_t errlen);
void		client_table_typed(Client *cl, ClientTable *t, const HubTypes *types);
int			client_bind_value(Client *cl, sqlite3_stmt *st, int idx, const JField *f,
							  ValueKind kind, ValueForm form, char *err, size_t errlen);
void		hubtypes_add(HubTypes *ht, const char *table, const char *col, const char *type);
const char *hubtypes_get(const HubTypes *ht, const char *table, const char *col);
void		hubtypes_free(HubTypes *ht);

/* errors.c */
bool		client_has_errors(Client *cl);
int			client_forget_errors(Client *cl, char *err, size_t errlen);
int			client_retry_errors(Client *cl, const HubTypes *types, int *applied,
								char *err, size_t errlen);
int			client_met_seqs(Client *cl, int64_t **seqs, char *err, size_t errlen);
int			client_settle_met(Client *cl, const int64_t *seqs, const bool *held, int n,
							  char *err, size_t errlen);

/* capture.c: how syncqd's own writes are kept out of capture */
int			capture_pause(Client *cl, char *err, size_t errlen);
int			capture_resume(Client *cl, char *err, size_t errlen);

/* identity.c */
int			client_reidentify(Client *cl, char *err, size_t errlen);

/* Shared by the client files (client.c, apply.c). */
void		client_db_err(char *err, size_t errlen, Client *cl, const char *what);
int			client_exec(Client *cl, const char *sql, char *err, size_t errlen);
sqlite3_stmt *client_prep(Client *cl, const char *sql, char *err, size_t errlen);
int64_t		client_query_int(sqlite3 *db, const char *sql, int *rc);
int			client_write_call(Client *cl, const char *sql, const char *what, int64_t *v, int n,
							  char *err, size_t errlen);
int			client_state_set(Client *cl, const char *key, const char *value,
							 char *err, size_t errlen);
char	   *client_state_get(Client *cl, const char *key);
int			client_try_change(Client *cl, Change *c, const HubTypes *types, TryMode how,
							  char *why, size_t whylen, char *err, size_t errlen);
const char *client_short_reason(Client *cl, const char *why);

#endif							/* SYNCQD_CLIENT_H */
