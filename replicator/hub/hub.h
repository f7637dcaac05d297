/*
 * hub.h — the PostgreSQL side of syncqd (hub.c, hub_upload.c).
 */
#ifndef SYNCQD_HUB_H
#define SYNCQD_HUB_H

#include "syncqd.h"

/* A tracked hub table: its columns, their types, which form the key. */
typedef struct
{
	char	   *schema;
	char	   *name;
	char	   *qname;			/* quoted, schema-qualified */
	int			ncols;
	char	  **cols;
	char	  **types;			/* format_type() of each column */
	bool	   *is_pk;
	int		   *pk_pos;			/* 1-based place in the primary key, 0: none */
	int			npk;
} HubTable;

typedef struct
{
	int			applied;		/* changes applied */
	int			conflicts;		/* changes overruled */
	int			skipped;		/* re-sent changes the hub already had */
	int			parked;			/* refused by the hub: set aside in sync_errors */
	int			retried;		/* set-aside changes that went through now */
	bool		clone;			/* refused: a copy of another node */
} UploadStats;

/* Where an upload may be acknowledged: the end of every page sent. */
typedef struct
{
	int64_t		seq;
	uint64_t	digest;
} UploadMark;

/* An upload in progress (hub_upload_begin .. hub_upload_end). */
typedef struct
{
	char		client_id[NODE_ID_LEN + 1];
	int64_t		hub_seq;		/* the hub's up_seq for the client */
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
} HubUpload;

struct Hub
{
	PGconn	   *conn;
	char		node_id[NODE_ID_LEN + 1];
	HubTable   *tables;			/* sorted by name */
	int			ntables;
	HubUpload	up;
	char		sqlstate[6];	/* of the last failed statement, "" if none */
};

/* A change set aside in the hub's sync_errors, for the status. */
typedef struct
{
	int64_t		seq;
	char	   *table;
	char		op;
	char	   *pk;
	char	   *error;
	char	   *first_failed;
	char	   *last_failed;
	int			attempts;
} HubError;

Hub		   *hub_connect(const char *conninfo, bool listen, char *err, size_t errlen);
void		hub_close(Hub *h);
void		hub_rollback(Hub *h);
bool		hub_ok(Hub *h);
int			hub_socket(Hub *h);
int			hub_consume(Hub *h, int *changes, int *requests, char *err, size_t errlen);
int			hub_load_tables(Hub *h, char *err, size_t errlen);
HubTable   *hub_table(Hub *h, const char *name);
void		hub_tables_free(HubTable *tables, int n);
int			hub_col(const HubTable *t, const char *col);

int			hub_upload_begin(Hub *h, const char *client_id, int64_t ack_seq,
							 uint64_t ack_digest, char *err, size_t errlen);
int			hub_upload_chunk(Hub *h, const ChangeList *page, char *err, size_t errlen);
int			hub_upload_end(Hub *h, UploadStats *stats, char *err, size_t errlen);
void		hub_upload_forget(HubUpload *u);
int			hub_notify_upload(Hub *h, const char *client_id, char *err, size_t errlen);
int			hub_retry_errors(Hub *h, const char *client_id, UploadStats *stats,
							 char *err, size_t errlen);
long		hub_count_errors(Hub *h, const char *client_id, char *err, size_t errlen);
int			hub_list_errors(Hub *h, const char *client_id, int max, HubError **rows,
							char *err, size_t errlen);
void		hub_errors_free(HubError *rows, int n);
long		hub_count_conflicts(Hub *h, const char *client_id, char *err, size_t errlen);

int			hub_download_begin(Hub *h, const char *position, char **snapshot, bool *behind,
							   char *err, size_t errlen);
int			hub_changes_open(Hub *h, const char *position, const char *target, int64_t done,
							 const char *client_id, char *err, size_t errlen);
int			hub_table_open(Hub *h, const HubTable *t, char *err, size_t errlen);
PGresult   *hub_fetch(Hub *h, const char *cursor, int n, char *err, size_t errlen);
int			hub_close_cursor(Hub *h, const char *cursor, char *err, size_t errlen);
long		hub_number(Hub *h, const char *sql, const char *param, char *err, size_t errlen);
long		hub_prune_if_due(Hub *h, char *err, size_t errlen);
int			hub_download_end(Hub *h, const char *client_id, const char *snapshot,
							 char *err, size_t errlen);
int			hub_note_position(Hub *h, const char *client_id, const char *snapshot,
							  char *err, size_t errlen);

/* Shared by hub.c and hub_upload.c. */
PGresult   *hub_run(Hub *h, const char *sql, int nparams, const char *const *params,
					ExecStatusType want, char *err, size_t errlen);
int			hub_exec(Hub *h, const char *sql, char *err, size_t errlen);
char	   *hub_quote_ident(Hub *h, const char *s);
void		hub_set_err(char *err, size_t errlen, const char *what, PGconn *conn);

#endif							/* SYNCQD_HUB_H */
