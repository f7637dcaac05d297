/*
 * change.h — one change as it travels between nodes, and its version
 * (change.c; the queue's row is docs/queue.md).
 *
 * A Change is read from a queue row (client/queue.c, hub/errors.c), from a
 * request (link/proto.c) or from the hub (hub/link_pg.c): its pk and row
 * are parsed by the one JSON codec (json.h), and it keeps their canonical
 * spelling, which names the row in sync_versions and feeds the digest.
 */
#ifndef SYNCQD_CHANGE_H
#define SYNCQD_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/json.h"

#define NODE_ID_LEN 36

/* One queued change, as it travels (docs/queue.md). */
typedef struct
{
	int64_t		seq;
	char	   *table;			/* unquoted table name */
	char		op;				/* 'I', 'U' or 'D' */
	JObject		pk;
	JObject		row;			/* empty for 'D' */
	bool		has_row;
	char	   *pk_json;		/* canonical compact JSON */
	char	   *row_json;		/* canonical compact JSON, NULL for 'D' */
	int64_t		ver_us;			/* changed_at, microseconds since 1970 */
	char	   *changed_at;		/* changed_at as ISO-8601 text, UTC */
	char		origin[NODE_ID_LEN + 1];
	bool		immediate;
	int64_t		replaces_us;	/* a correction from the hub: the version of
								 * this node's it replaces (0: none) */
} Change;

typedef struct
{
	Change	   *c;
	int			n;
	int			cap;
} ChangeList;

/*
 * The names a table or the columns of a table had and have no more on
 * this side (sync_columns_gone, sync_tables_renamed and their SQLite
 * twins): each renamed (to) or dropped (to NULL).
 */
typedef struct
{
	int			n;
	char	  **from;
	char	  **to;				/* ... its name now, or NULL: dropped */
} NameMap;

void		namemap_add(NameMap *m, const char *from, const char *to);
int			namemap_find(const NameMap *m, const char *from);
void		namemap_free(NameMap *m);

int			change_init(Change *c, int64_t seq, const char *table, const char *op,
						const char *pk, const char *row, int64_t ver_us,
						const char *origin, bool immediate, char *err, size_t errlen);
int			change_take(Change *c, int64_t seq, const char *table, const char *op, JObject *pk,
						JObject *row, int64_t ver_us, const char *origin, bool immediate,
						char *err, size_t errlen);
int			change_take_parts(Change *c, int64_t seq, const char *table, const char *op,
							  int pk_fields, bool has_row, int64_t ver_us, const char *origin,
							  bool immediate, char *err, size_t errlen);
void		change_take_rows(Change *c, JObject *pk, JObject *row);
void		change_drop_rows(Change *c);
void		change_respell(Change *c);
void		change_free(Change *c);
bool		change_follow_column(Change *c, const char *col, const char *to);
bool		change_int_field(const Change *c, const char *col, int64_t *v);
bool		change_set_int(Change *c, const char *col, int64_t from, int64_t to);
Change	   *changes_push(ChangeList *l);
void		changes_free(ChangeList *l);
char	   *format_instant_us(int64_t us);

/* The running digest of a node's uploaded changes (64-bit FNV-1a). */
uint64_t	digest_step(uint64_t h, const char *s, size_t n);
uint64_t	change_digest(uint64_t h, const Change *c);

/* A version: (changed_at, origin); compares by time then node id. */
typedef struct
{
	int64_t		us;
	char		origin[NODE_ID_LEN + 1];
	bool		known;
} Version;

int			version_cmp(const Version *a, const Version *b);

/* A map from a row (row_key: table and canonical pk) to a version. */
typedef struct
{
	char	  **keys;
	Version    *vals;
	size_t		cap;
	size_t		n;
} VerMap;

char	   *row_key(const char *table, const char *pk_json);
Version    *vermap_get(const VerMap *m, const char *key);
void		vermap_put(VerMap *m, const char *key, const Version *v);
void		vermap_max(VerMap *m, const char *key, const Version *v);
void		vermap_free(VerMap *m);

#endif							/* SYNCQD_CHANGE_H */
