/*
 * json.h — the one JSON codec of rows (json.c).
 *
 * A row or a key is a flat JSON object (docs/queue.md). syncqd keeps every
 * number exactly as written (a numeric of 30 digits, a 64-bit integer),
 * which general JSON libraries (jansson 2.14) turn into doubles: so rows
 * are read and written here, and nowhere else.
 */
#ifndef SYNCQD_JSON_H
#define SYNCQD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

typedef enum
{
	JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_RAW, JV_BLOB
} JvType;

/* One field of a flat object. */
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

/* Read a flat object: numbers and nested containers as their text, strings
 * decoded, the tagged blob {"$hex": "..."} as bytes. */
int			jobj_parse(const char *s, size_t n, JObject *out, char *err, size_t errlen);
void		jobj_free(JObject *o);
const JField *jobj_get(const JObject *o, const char *key);

/* Write: a string, escaped as PostgreSQL does; a field's value (blobs as
 * base64); an object, compact, keys in their order (blobs as base64, or
 * tagged: as {"$hex": ...}, which jobj_parse reads back to the same). */
void		buf_json_string(Buf *b, const char *s, size_t n);
void		buf_json_value(Buf *b, const JField *f);
void		buf_json_object(Buf *b, const JObject *o);
void		buf_json_object_tagged(Buf *b, const JObject *o);

#endif							/* SYNCQD_JSON_H */
