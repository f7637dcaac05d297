/*
 * json.h — the one JSON codec of syncqd (json.c): rows, and every message
 * that carries rows.
 *
 * A row or a key is a flat JSON object (docs/queue.md). syncqd keeps every
 * number exactly as written (a numeric of 30 digits, a 64-bit integer),
 * which general JSON libraries (jansson 2.14) turn into doubles: so rows,
 * and the protocol messages they travel in (link/proto.c), are read and
 * written here and nowhere else. jansson is left the status documents.
 *
 * Reading: a JsonIn is a cursor over one document; the caller asks for
 * what it expects next (an object's keys one by one, an integer, a row...)
 * and gets -1 with in->err when the text is not that. Writing: a JsonOut
 * appends to a Buf and puts the commas and colons where they go.
 */
#ifndef SYNCQD_JSON_H
#define SYNCQD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* ---- a row: a flat object ---------------------------------------------- */

typedef enum
{
	JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_RAW, JV_BLOB
} JvType;

/*
 * One field of a flat object. A parsed object keeps the text of all its
 * keys and values in one block of its own (mem); a key or value set later
 * is the field's own allocation (own says which): change them only with
 * jfield_set_key and jfield_set_text, and free a field taken out of an
 * object with jfield_release.
 */
typedef struct
{
	char	   *key;
	JvType		type;
	char	   *text;			/* number or raw JSON text; decoded string;
								 * blob bytes */
	size_t		len;
	int			b;				/* JV_BOOL */
	unsigned char own;			/* JF_OWN_KEY | JF_OWN_TEXT */
} JField;

#define JF_OWN_KEY	1
#define JF_OWN_TEXT	2

typedef struct
{
	JField	   *f;
	int			n;
	int			cap;
	char	   *mem;			/* the parsed keys and values, one block */
} JObject;

/* The most fields of a row: PostgreSQL's most columns of a table (SQLite's
 * default is 2000, but such a row has no table on the hub). */
#define JSON_FIELDS_MAX 1600

/* Read a flat object (the whole of s): numbers and nested containers as
 * their text, strings decoded, the tagged blob {"$hex": "..."} as bytes. */
int			jobj_parse(const char *s, size_t n, JObject *out, char *err, size_t errlen);
void		jobj_free(JObject *o);
const JField *jobj_get(const JObject *o, const char *key);
void		jfield_set_key(JField *f, char *key);	/* key: malloc'd, taken */
void		jfield_set_text(JField *f, JvType type, char *text, size_t len);	/* text: taken */
void		jfield_release(JField *f);	/* what the field owns */

/* Is s[0..n) exactly one JSON value (RFC 8259)? 0, or -1 with err. */
int			json_check(const char *s, size_t n, char *err, size_t errlen);

/* Write: a string, escaped as PostgreSQL does; a field's value (blobs as
 * base64); an object, compact, keys in their order (blobs as base64, or
 * tagged: as {"$hex": ...}, which jobj_parse reads back to the same). */
void		buf_json_string(Buf *b, const char *s, size_t n);
void		buf_json_value(Buf *b, const JField *f);
void		buf_json_object(Buf *b, const JObject *o);
void		buf_json_object_tagged(Buf *b, const JObject *o);

/* ---- reading a document ------------------------------------------------ */

#define JSON_DEPTH_MAX 64

typedef enum
{
	JK_OBJECT, JK_ARRAY, JK_STRING, JK_NUMBER, JK_BOOL, JK_NULL,
	JK_NONE					/* the end, or a character no value starts with */
} JsonKind;

typedef struct
{
	const char *s;
	size_t		n;
	size_t		i;				/* where the next token starts */
	bool		utf8;			/* strings must be UTF-8 (text from outside) */
	int			depth;
	bool		first[JSON_DEPTH_MAX + 2];	/* nothing read yet in this container */
	Buf			key;			/* the last key read, decoded */
	Buf			scratch;
	char		err[160];
} JsonIn;

void		jin_init(JsonIn *in, const char *s, size_t n, bool utf8);
void		jin_free(JsonIn *in);
JsonKind	jin_peek(JsonIn *in);

/* Containers: jin_object/jin_array consume the opening bracket; then
 * jin_key (in->key.p holds the key) and jin_item say 1 while there is a
 * member or element to read, 0 once the closing bracket is consumed. */
int			jin_object(JsonIn *in);
int			jin_key(JsonIn *in);
int			jin_array(JsonIn *in);
int			jin_item(JsonIn *in);

/* Values; -1 with in->err if the next value is not of the kind. */
int			jin_string(JsonIn *in, Buf *out);	/* decoded; \u0000 refused */
int			jin_int(JsonIn *in, int64_t *v);	/* an integer that fits int64 */
int			jin_bool(JsonIn *in, bool *v);
bool		jin_null(JsonIn *in);	/* consumes a null: true */
int			jin_skip(JsonIn *in);	/* any value */
int			jin_span(JsonIn *in, const char **p, size_t *len);	/* any value, as its text */
int			jin_row(JsonIn *in, JObject *out);	/* a flat object, as jobj_parse */
int			jin_row_check(JsonIn *in, int *nfields);	/* ... only checked */
int			jin_end(JsonIn *in);	/* nothing but white space is left */

/* ---- writing a document ------------------------------------------------ */

typedef struct
{
	Buf		   *b;
	bool		comma;			/* a value was written: the next needs a comma */
} JsonOut;

void		jout_init(JsonOut *o, Buf *b);
void		jout_object(JsonOut *o);
void		jout_object_end(JsonOut *o);
void		jout_array(JsonOut *o);
void		jout_array_end(JsonOut *o);
void		jout_key(JsonOut *o, const char *key);
void		jout_string(JsonOut *o, const char *s);	/* NULL: null */
void		jout_stringn(JsonOut *o, const char *s, size_t n);
void		jout_int(JsonOut *o, int64_t v);
void		jout_bool(JsonOut *o, bool v);
void		jout_null(JsonOut *o);
/* JSON text made by syncqd's own writer or by PostgreSQL, put as it is. */
void		jout_raw(JsonOut *o, const char *json, size_t n);
/* A row; tagged: blobs as {"$hex": ...} (as they travel up), else base64. */
void		jout_row(JsonOut *o, const JObject *row, bool tagged);
/* One field's value, as buf_json_value writes it. */
void		jout_field(JsonOut *o, const JField *f);

/* A key and its value in one call. */
void		jout_kstring(JsonOut *o, const char *key, const char *s);
void		jout_kint(JsonOut *o, const char *key, int64_t v);
void		jout_kbool(JsonOut *o, const char *key, bool v);

#endif							/* SYNCQD_JSON_H */
