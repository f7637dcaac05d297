/*
 * rowjson.c
 *	  A column value as JSON, exactly as docs/queue.md encodes it.
 *
 * The capture trigger knows each table's layout, so it picks a way to write
 * every column once (syncq_column_init) and then writes values straight from
 * the tuple (syncq_json_value), without the generic to_json machinery:
 *
 *	  integers          number, every digit            9223372036854775807
 *	  numeric           number, digits as stored       1.50
 *	  float4/float8     number, shortest exact text    0.1
 *	  NaN, ±Infinity    string                         "NaN"
 *	  boolean           true / false
 *	  text types        string, RFC 8259 escapes       "a\"b\n"
 *	  bytea             string, base64 with padding    "AAEC"
 *	  timestamptz       string, ISO-8601 in UTC        "2025-07-24T00:30:00.5+00:00"
 *	  timestamp         the same, read as UTC
 *	  date              string                         "2025-07-24"
 *	  interval          string, ISO 8601 duration      "P1DT2H"
 *	  uuid              string, lower case
 *	  json / jsonb      the value itself, embedded
 *	  arrays            JSON array of the elements     [1,2,null]
 *	  anything else     string, the type's output function
 *
 * JSON is built in a StringInfo that starts with room for a varlena header
 * (syncq_json_begin), so the finished text is a json Datum in place
 * (syncq_json_finish) with no further copy.
 */
#include "syncq.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/shortest_dec.h"
#include "miscadmin.h"
#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* Bytes that JSON strings must escape: control characters, quote, backslash. */
static inline bool
needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/*
 * Append str[0..len) to buf as a JSON string, quotes included.
 *
 * Runs of plain bytes are copied whole; UTF-8 passes through unchanged (the
 * database encoding has already validated it).
 */
void
syncq_json_string(StringInfo buf, const char *str, int len)
{
	const char *run = str;
	const char *end = str + len;
	const char *p;

	appendStringInfoCharMacro(buf, '"');
	for (p = str; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (!needs_escape(c))
			continue;
		if (p > run)
			appendBinaryStringInfo(buf, run, p - run);
		switch (c)
		{
			case '"':
				appendBinaryStringInfo(buf, "\\\"", 2);
				break;
			case '\\':
				appendBinaryStringInfo(buf, "\\\\", 2);
				break;
			case '\b':
				appendBinaryStringInfo(buf, "\\b", 2);
				break;
			case '\f':
				appendBinaryStringInfo(buf, "\\f", 2);
				break;
			case '\n':
				appendBinaryStringInfo(buf, "\\n", 2);
				break;
			case '\r':
				appendBinaryStringInfo(buf, "\\r", 2);
				break;
			case '\t':
				appendBinaryStringInfo(buf, "\\t", 2);
				break;
			default:
				appendStringInfo(buf, "\\u%04x", c);
				break;
		}
		run = p + 1;
	}
	if (end > run)
		appendBinaryStringInfo(buf, run, end - run);
	appendStringInfoCharMacro(buf, '"');
}

/* Start a JSON text in buf (initialized), leaving room for the varlena header. */
void
syncq_json_begin(StringInfo buf)
{
	resetStringInfo(buf);
	appendStringInfoSpaces(buf, VARHDRSZ);
}

/* Finish the JSON text of buf as a json Datum that lives in buf. */
Datum
syncq_json_finish(StringInfo buf)
{
	SET_VARSIZE(buf->data, buf->len);
	return PointerGetDatum(buf->data);
}

/* float8 as the shortest text that reads back to the same double. */
static void
append_float8(StringInfo buf, double v)
{
	if (isnan(v))
		appendStringInfoString(buf, "\"NaN\"");
	else if (isinf(v))
		appendStringInfoString(buf, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
	{
		enlargeStringInfo(buf, DOUBLE_SHORTEST_DECIMAL_LEN);
		buf->len += double_to_shortest_decimal_bufn(v, buf->data + buf->len);
		buf->data[buf->len] = '\0';
	}
}

/* float4 as the shortest text that reads back to the same float4. */
static void
append_float4(StringInfo buf, float v)
{
	if (isnan(v))
		appendStringInfoString(buf, "\"NaN\"");
	else if (isinf(v))
		appendStringInfoString(buf, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
	{
		enlargeStringInfo(buf, FLOAT_SHORTEST_DECIMAL_LEN);
		buf->len += float_to_shortest_decimal_bufn(v, buf->data + buf->len);
		buf->data[buf->len] = '\0';
	}
}

/* numeric as a number with its digits as stored; NaN and ±Infinity as strings. */
static void
append_numeric(StringInfo buf, Datum value)
{
	Numeric		num = DatumGetNumeric(value);
	char	   *str = DatumGetCString(DirectFunctionCall1(numeric_out,
														  NumericGetDatum(num)));

	if (numeric_is_nan(num) || numeric_is_inf(num))
		syncq_json_string(buf, str, strlen(str));
	else
		appendStringInfoString(buf, str);
}

/* bytea as standard base64 with padding. */
static void
append_bytea(StringInfo buf, Datum value)
{
	bytea	   *b = DatumGetByteaPP(value);
	int			srclen = VARSIZE_ANY_EXHDR(b);
	int			dstlen = pg_b64_enc_len(srclen);
	int			n;

	enlargeStringInfo(buf, dstlen + 2);
	buf->data[buf->len++] = '"';
	n = pg_b64_encode(VARDATA_ANY(b), srclen, buf->data + buf->len, dstlen);
	if (n < 0)
		elog(ERROR, "could not encode a bytea value as base64");
	buf->len += n;
	buf->data[buf->len++] = '"';
	buf->data[buf->len] = '\0';
}

/* uuid in its canonical lower-case form. */
static void
append_uuid(StringInfo buf, Datum value)
{
	static const char hex[] = "0123456789abcdef";
	pg_uuid_t  *u = DatumGetUUIDP(value);
	char	   *p;
	int			i;

	enlargeStringInfo(buf, 2 + 36);
	p = buf->data + buf->len;
	*p++ = '"';
	for (i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->data[i] >> 4];
		*p++ = hex[u->data[i] & 0x0f];
	}
	*p++ = '"';
	*p = '\0';
	buf->len = p - buf->data;
}

/* An instant as ISO-8601 in UTC with its +00:00 offset. */
static void
append_timestamp(StringInfo buf, Datum value)
{
	static const int utc = 0;
	char		str[MAXDATELEN + 1];

	JsonEncodeDateTime(str, value, TIMESTAMPTZOID, &utc);
	appendStringInfoCharMacro(buf, '"');
	appendStringInfoString(buf, str);
	appendStringInfoCharMacro(buf, '"');
}

/* A date as YYYY-MM-DD, whatever the session's DateStyle. */
static void
append_date(StringInfo buf, Datum value)
{
	char		str[MAXDATELEN + 1];

	JsonEncodeDateTime(str, value, DATEOID, NULL);
	appendStringInfoCharMacro(buf, '"');
	appendStringInfoString(buf, str);
	appendStringInfoCharMacro(buf, '"');
}

/*
 * An interval as an ISO 8601 duration ("P1Y2M3DT4H5M6.7S"), whatever
 * IntervalStyle says: PostgreSQL reads it back exactly, and syncqd reads it
 * without knowing PostgreSQL's own styles (docs/replication.md, Types).
 */
static void
append_interval(StringInfo buf, Datum value)
{
	Interval   *span = DatumGetIntervalP(value);
	struct pg_itm itm;
	char		str[MAXDATELEN + 1];

	interval2itm(*span, &itm);
	EncodeInterval(&itm, INTSTYLE_ISO_8601, str);
	syncq_json_string(buf, str, strlen(str));
}

/*
 * An array as a JSON array of its elements, nested for each dimension, each
 * element as to_json() writes it (what row_to_json() gives the first sync).
 */
static void
append_array(StringInfo buf, Datum value)
{
	text	   *json = DatumGetTextPP(DirectFunctionCall1(array_to_json, value));

	appendBinaryStringInfo(buf, VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json));
}

/*
 * Decide how column att is written, and prepare its "name": prefix.
 *
 * Domains are written as their base type.  Everything is allocated in mcxt,
 * which lives as long as the table's cache entry.
 */
void
syncq_column_init(SyncqColumn *col, Form_pg_attribute att, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	StringInfoData key;
	Oid			base = getBaseType(att->atttypid);

	col->attnum = att->attnum;
	col->name = pstrdup(NameStr(att->attname));
	initStringInfo(&key);
	syncq_json_string(&key, col->name, strlen(col->name));
	appendStringInfoChar(&key, ':');
	col->key = key.data;
	col->keylen = key.len;
	col->typlen = att->attlen;
	col->typbyval = att->attbyval;

	switch (base)
	{
		case INT2OID:
			col->kind = SYNCQ_JSON_INT2;
			break;
		case INT4OID:
			col->kind = SYNCQ_JSON_INT4;
			break;
		case INT8OID:
			col->kind = SYNCQ_JSON_INT8;
			break;
		case BOOLOID:
			col->kind = SYNCQ_JSON_BOOL;
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			col->kind = SYNCQ_JSON_TEXT;
			break;
		case NUMERICOID:
			col->kind = SYNCQ_JSON_NUMERIC;
			break;
		case FLOAT4OID:
			col->kind = SYNCQ_JSON_FLOAT4;
			break;
		case FLOAT8OID:
			col->kind = SYNCQ_JSON_FLOAT8;
			break;
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			col->kind = SYNCQ_JSON_TIMESTAMP;
			break;
		case DATEOID:
			col->kind = SYNCQ_JSON_DATE;
			break;
		case INTERVALOID:
			col->kind = SYNCQ_JSON_INTERVAL;
			break;
		case UUIDOID:
			col->kind = SYNCQ_JSON_UUID;
			break;
		case BYTEAOID:
			col->kind = SYNCQ_JSON_BYTEA;
			break;
		case JSONOID:
			col->kind = SYNCQ_JSON_JSON;
			break;
		case JSONBOID:
			col->kind = SYNCQ_JSON_JSONB;
			break;
		default:
			if (OidIsValid(get_element_type(base)))
			{
				col->kind = SYNCQ_JSON_ARRAY;
				break;
			}
			{
				Oid			outfunc;
				bool		isvarlena;

				col->kind = SYNCQ_JSON_OTHER;
				getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
				fmgr_info_cxt(outfunc, &col->output, mcxt);
			}
			break;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Append the JSON of one value of column col to buf.
 */
void
syncq_json_value(StringInfo buf, const SyncqColumn *col, Datum value,
				 bool isnull)
{
	if (isnull)
	{
		appendBinaryStringInfo(buf, "null", 4);
		return;
	}

	switch (col->kind)
	{
		case SYNCQ_JSON_INT2:
			enlargeStringInfo(buf, MAXINT8LEN + 1);
			buf->len += pg_ltoa(DatumGetInt16(value), buf->data + buf->len);
			break;
		case SYNCQ_JSON_INT4:
			enlargeStringInfo(buf, MAXINT8LEN + 1);
			buf->len += pg_ltoa(DatumGetInt32(value), buf->data + buf->len);
			break;
		case SYNCQ_JSON_INT8:
			enlargeStringInfo(buf, MAXINT8LEN + 1);
			buf->len += pg_lltoa(DatumGetInt64(value), buf->data + buf->len);
			break;
		case SYNCQ_JSON_BOOL:
			if (DatumGetBool(value))
				appendBinaryStringInfo(buf, "true", 4);
			else
				appendBinaryStringInfo(buf, "false", 5);
			break;
		case SYNCQ_JSON_TEXT:
			{
				text	   *t = DatumGetTextPP(value);

				syncq_json_string(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
			break;
		case SYNCQ_JSON_NUMERIC:
			append_numeric(buf, value);
			break;
		case SYNCQ_JSON_FLOAT4:
			append_float4(buf, DatumGetFloat4(value));
			break;
		case SYNCQ_JSON_FLOAT8:
			append_float8(buf, DatumGetFloat8(value));
			break;
		case SYNCQ_JSON_TIMESTAMP:
			append_timestamp(buf, value);
			break;
		case SYNCQ_JSON_DATE:
			append_date(buf, value);
			break;
		case SYNCQ_JSON_INTERVAL:
			append_interval(buf, value);
			break;
		case SYNCQ_JSON_UUID:
			append_uuid(buf, value);
			break;
		case SYNCQ_JSON_BYTEA:
			append_bytea(buf, value);
			break;
		case SYNCQ_JSON_JSON:
			{
				text	   *t = DatumGetTextPP(value);

				appendBinaryStringInfo(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
			break;
		case SYNCQ_JSON_JSONB:
			{
				Jsonb	   *jb = DatumGetJsonbP(value);

				JsonbToCString(buf, &jb->root, VARSIZE(jb));
			}
			break;
		case SYNCQ_JSON_ARRAY:
			append_array(buf, value);
			break;
		case SYNCQ_JSON_OTHER:
			{
				char	   *str = OutputFunctionCall((FmgrInfo *) &col->output,
													 value);

				syncq_json_string(buf, str, strlen(str));
			}
			break;
	}
}
