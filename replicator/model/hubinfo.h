/*
 * hubinfo.h — what the hub tells a client, whichever link carries it
 * (hubinfo.c): its tracked tables, what an upload came to, the changes it
 * set aside. The hub fills these (hub/), the HTTP link decodes them
 * (link/proto.c), sync/ and the status read them; none of those needs
 * another's headers for it.
 */
#ifndef SYNCQD_HUBINFO_H
#define SYNCQD_HUBINFO_H

#include <stdbool.h>
#include <stdint.h>

#include "model/change.h"
#include "model/value.h"

/*
 * A tracked hub table: its stored columns, their types, which form the key.
 * Generated columns are not among them: no node ships them (each computes
 * its own); gencols names them, so that a client's value for one is left
 * out rather than refused.
 */
typedef struct
{
	char	   *schema;
	char	   *name;
	char	   *qname;			/* quoted, schema-qualified */
	int			ncols;
	char	  **cols;
	char	  **types;			/* format_type() of each column (a domain's base) */
	ValueKind  *kinds;			/* value_kind() of each type; NULL on a client */
	bool	   *is_pk;
	int		   *pk_pos;			/* 1-based place in the primary key, 0: none */
	int			npk;
	NameMap		gone;			/* columns the table had and has no more */
	char	  **gencols;		/* generated columns (on the hub side only) */
	int			ngen;
	char	   *keyseq;			/* hub only: the sequence behind a single
								 * integer key (serial, identity, nextval
								 * default), as regclass text; NULL if none */
	char	   *keycol;			/* hub only: that key column (with keyseq) */
	bool		natural;		/* hub only: its key policy is 'natural' (the
								 * app's keys: kept ahead of, never given) */
	NameMap		refs;			/* hub only: columns of single-column foreign
								 * keys (from) to tables with a keyseq (to) */
	char	   *always;			/* hub only: its GENERATED ALWAYS identity
								 * column, NULL if none */
	bool		key_domain;		/* hub only: a key column's type is a domain */
} HubTable;

/* The table called name in tables[0..n), sorted by name; NULL if none. */
HubTable   *hub_tables_find(HubTable *tables, int n, const char *name);
void		hub_tables_free(HubTable *tables, int n);
int			hub_col(const HubTable *t, const char *col);
bool		hub_col_generated(const HubTable *t, const char *col);

/*
 * A client's new row the hub gave a new key (docs/replication.md, "Keys
 * the hub assigns"): the insert at the client's queue seq, of table, whose
 * key column was old_key, is new_key everywhere now.
 */
typedef struct
{
	int64_t		seq;
	char	   *table;
	char	   *column;
	int64_t		old_key;
	int64_t		new_key;
} KeyRename;

void		key_renames_free(KeyRename *r, int n);

/*
 * A change of an upload the hub set aside because its key names another
 * record on the hub (docs/replication.md, "Keys the app sets"): an insert
 * that met a record another node (or the hub's app) made first, or a later
 * change of that node's own row. The client keeps it in its own
 * sync_errors (client/queue.c) with error, the message for a person on
 * that node, until the hub's copy goes.
 */
typedef struct
{
	int64_t		seq;			/* the client's queue seq */
	char	   *error;
} MetChange;

void		met_changes_free(MetChange *m, int n);

/* Changes per page of an upload: the libpq link hands the hub pages of
 * this many (sync/sync.c), and serve an HTTP upload the same way. */
#define UPLOAD_PAGE 5000
/* ... and serve's pages end once their rows' text passes this many bytes */
#define UPLOAD_PAGE_BYTES (4 * 1024 * 1024)

/* What an upload came to. */
typedef struct
{
	int			applied;		/* changes applied */
	int			conflicts;		/* changes overruled */
	int			skipped;		/* re-sent changes the hub already had */
	int			parked;			/* refused by the hub: set aside in sync_errors */
	int			retried;		/* set-aside changes that went through now */
	bool		clone;			/* refused: a copy of another node */
	bool		full;			/* refused: the node has too many changes set aside */
} UploadStats;

/* Where an upload may be acknowledged: the end of every page sent. */
typedef struct
{
	int64_t		seq;
	uint64_t	digest;
} UploadMark;

/* A change set aside in the hub's sync_errors, for the status. */
typedef struct
{
	int64_t		seq;
	char	   *table;
	char		op;
	char	   *pk;				/* JSON text */
	char	   *error;
	char	   *first_failed;
	char	   *last_failed;
	int			attempts;
} HubError;

void		hub_errors_free(HubError *rows, int n);
/* held[i]: is seqs[i] among rows[0..nrows)? (both in ascending seq order)
 * Returns how many rows are among seqs. */
int			hub_errors_held(const HubError *rows, int nrows, const int64_t *seqs, int n, bool *held);

#endif							/* SYNCQD_HUBINFO_H */
