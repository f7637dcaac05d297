/*
 * value.h — one value between a hub column's type and the form SQLite apps
 * read (value.c; docs/replication.md, Types).
 */
#ifndef SYNCQD_VALUE_H
#define SYNCQD_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/json.h"

/* What a hub column's type asks of its values (from format_type()). */
typedef enum
{
	VK_OTHER,					/* text, varchar, enums, inet, ...: as they are */
	VK_INTEGER,
	VK_NUMERIC,
	VK_FLOAT,
	VK_BOOL,
	VK_BYTEA,
	VK_TIMESTAMPTZ,
	VK_TIMESTAMP,
	VK_DATE,
	VK_TIME,
	VK_TIMETZ,
	VK_INTERVAL,
	VK_UUID,
	VK_JSON,					/* json and jsonb */
	VK_ARRAY
} ValueKind;

/*
 * How syncqd writes a column's values into SQLite: the default forms, or
 * those SQLAlchemy's SQLite types store (six fractional digits always; an
 * interval as the epoch plus it). Chosen per table or column by
 * sync_track's forms argument (syncq_tracked.forms).
 */
typedef enum
{
	FORM_DEFAULT,
	FORM_SQLALCHEMY
} ValueForm;

/* A value as SQLite stores it. */
typedef struct
{
	int			type;			/* SQLITE_NULL, _INTEGER, _FLOAT, _TEXT, _BLOB */
	int64_t		i;
	double		d;
	const char *p;				/* text (UTF-8) or bytes */
	size_t		n;
	Buf			own;			/* holds p when it was made here */
} SqlValue;

ValueKind	value_kind(const char *hubtype);
int			value_form(const char *name, ValueForm *form);
int			value_for_sqlite(const JField *f, ValueKind kind, ValueForm form, SqlValue *out,
							 char *why, size_t whylen);
void		sqlvalue_free(SqlValue *v);
int			value_for_hub(JField *f, ValueKind kind, char *why, size_t whylen);
bool		value_respelt_kind(ValueKind kind);
bool		value_differs_for_client(const JField *sent, const JField *stored, ValueKind kind,
									 bool respelt);
bool		row_differs_for_client(const JObject *sent, const JObject *stored,
								   ValueKind (*kind) (const void *arg, const char *col, bool *respelt),
								   const void *arg);
bool		uuid_canonical(const char *s, size_t n, char out[37]);

#endif							/* SYNCQD_VALUE_H */
