/*
 * syncqd.h — declarations shared by the files of syncqd.
 *
 *   main.c         command line, the lock, --once
 *   daemon.c       the run loop: wake-ups, deadlines, backoff (docs/daemon.md)
 *   watch.c        the SQLite side's wake-ups: the wake file, data_version
 *   control.c      the control API over HTTP (libmicrohttpd), the status
 *   sync.c         one sync: up, down, first sync (docs/replication.md)
 *   client.c       the SQLite side: queue, positions, applying changes
 *   capture_mark.c syncqd's own writes kept out of capture; re-identifying
 *   hub.c          the PostgreSQL side over libpq
 *   change.c       one change and its version
 *   json.c         a JSON reader that keeps numbers exact, and writers
 *   util.c         memory, logging, time, the digest
 */
#ifndef SYNCQD_H
#define SYNCQD_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "syncq_contract.h"

#define SYNCQD_VERSION SYNCQ_VERSION

/* ---- main.c ------------------------------------------------------------ */

/* Set by SIGTERM/SIGINT: finish the transaction at hand, then exit 0. */
extern volatile sig_atomic_t stop_requested;

/* ---- util.c ------------------------------------------------------------ */

void	   *xmalloc(size_t n);
void	   *xcalloc(size_t n, size_t size);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);

typedef enum
{
	LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR
} LogLevel;
extern LogLevel log_level;
void		logmsg(LogLevel level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
int			log_open(const char *path, char *err, size_t errlen);
int			log_level_set(const char *name);
void		log_mhd(void *cls, const char *fmt, va_list ap);

int64_t		now_us(void);
int64_t		mono_us(void);
double		jitter01(void);

/* The running digest of a node's uploaded changes (64-bit FNV-1a). */
uint64_t	digest_step(uint64_t h, const char *s, size_t n);

/* ---- json.c ------------------------------------------------------------ */

typedef struct
{
	char	   *p;
	size_t		len;
	size_t		cap;
} Buf;

void		buf_reserve(Buf *b, size_t extra);
void		buf_putn(Buf *b, const char *s, size_t n);
void		buf_puts(Buf *b, const char *s);
void		buf_putc(Buf *b, char c);
void		buf_printf(Buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		buf_reset(Buf *b);
void		buf_free(Buf *b);
void		buf_json_string(Buf *b, const char *s, size_t n);
void		buf_base64(Buf *b, const unsigned char *p, size_t n);
void		buf_hex(Buf *b, const unsigned char *p, size_t n);
int			base64_decode(const char *s, size_t n, Buf *out);
int			hex_decode(const char *s, size_t n, Buf *out);

typedef enum
{
	JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_RAW, JV_BLOB
} JvType;

typedef struct
{
	char	   *key;
	JvType		type;
	char	   *text;			/* number or raw JSON text; decoded string;
								 * blob bytes */
	size_t		len;
	int			b;				/* JV_BOOL */
} JField;

typedef struct
{
	JField	   *f;
	int			n;
	int			cap;
} JObject;

int			jobj_parse(const char *s, size_t n, JObject *out, char *err, size_t errlen);
void		jobj_free(JObject *o);
const JField *jobj_get(const JObject *o, const char *key);
void		buf_json_value(Buf *b, const JField *f);
void		buf_json_object(Buf *b, const JObject *o);
void		buf_json_object_tagged(Buf *b, const JObject *o);

/* ---- changes ----------------------------------------------------------- */

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
} Change;

typedef struct
{
	Change	   *c;
	int			n;
	int			cap;
} ChangeList;

/* A version: (changed_at, origin); compares by time then node id. */
typedef struct
{
	int64_t		us;
	char		origin[NODE_ID_LEN + 1];
	bool		known;
} Version;

int			version_cmp(const Version *a, const Version *b);
int			change_init(Change *c, int64_t seq, const char *table, const char *op,
						const char *pk, const char *row, int64_t ver_us,
						const char *origin, bool immediate, char *err, size_t errlen);
void		change_free(Change *c);
Change	   *changes_push(ChangeList *l);
void		changes_free(ChangeList *l);
char	   *format_instant_us(int64_t us);
uint64_t	change_digest(uint64_t h, const Change *c);

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

typedef struct Client Client;
typedef struct Hub Hub;
typedef struct Link Link;

#endif							/* SYNCQD_H */
