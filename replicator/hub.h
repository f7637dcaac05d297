/*
 * hub.h — the PostgreSQL side of syncqd (hub.c).
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
	int			npk;
} HubTable;

typedef struct
{
	int			applied;		/* changes applied */
	int			conflicts;		/* changes overruled */
	int			skipped;		/* re-sent changes the hub already had */
	bool		clone;			/* refused: a copy of another node */
} UploadStats;

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
} HubUpload;

struct Hub
{
	PGconn	   *conn;
	char		node_id[NODE_ID_LEN + 1];
	HubTable   *tables;			/* sorted by name */
	int			ntables;
	HubUpload	up;
};

Hub		   *hub_connect(const char *conninfo, char *err, size_t errlen);
void		hub_close(Hub *h);
void		hub_rollback(Hub *h);
int			hub_load_tables(Hub *h, char *err, size_t errlen);
HubTable   *hub_table(Hub *h, const char *name);
int			hub_col(const HubTable *t, const char *col);

int			hub_upload_begin(Hub *h, const char *client_id, int64_t ack_seq,
							 uint64_t ack_digest, char *err, size_t errlen);
int			hub_upload_chunk(Hub *h, const ChangeList *page, char *err, size_t errlen);
int			hub_upload_end(Hub *h, int64_t *new_seq, uint64_t *new_digest,
						   UploadStats *stats, char *err, size_t errlen);

int			hub_download_begin(Hub *h, const char *position, char **snapshot, bool *behind,
							   char *err, size_t errlen);
int			hub_changes_open(Hub *h, const char *position, const char *client_id,
							 char *err, size_t errlen);
int			hub_table_open(Hub *h, const HubTable *t, char *err, size_t errlen);
PGresult   *hub_fetch(Hub *h, const char *cursor, int n, char *err, size_t errlen);
int			hub_close_cursor(Hub *h, const char *cursor, char *err, size_t errlen);
long		hub_prune_if_due(Hub *h, char *err, size_t errlen);
int			hub_download_end(Hub *h, const char *client_id, const char *snapshot,
							 char *err, size_t errlen);

#endif							/* SYNCQD_HUB_H */
