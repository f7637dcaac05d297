/*
 * value.c — one value between a hub column's type and the form SQLite apps
 * read (docs/replication.md, Types, is the table this file implements).
 *
 *   value_for_sqlite   the hub's JSON value -> what syncqd writes into a
 *                      SQLite column: every download and the first sync
 *   value_for_hub      a client's value, as its queue holds it -> the JSON
 *                      the hub reads, spelt canonically: every upload, on
 *                      the hub's side, before any version lookup and before
 *                      the change is relayed to the other clients
 *   value_differs_for_client, row_differs_for_client
 *                      would the client that sent a value hold another one
 *                      if it took what the hub stored (value_for_sqlite of
 *                      it)? Then it gets a correction (hub/apply.c)
 *
 * Both look at nothing but the value, the hub column's type and, towards
 * SQLite, the column's form. A value that does not read as its type expects
 * goes on as it is, and the other side's own input decides (the hub refuses
 * it by name and the change is set aside); only a value that cannot be
 * written at all is refused here, with a reason that names it.
 */
#include "model/value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/base.h"
#include "base/encode.h"
#include "tz.h"

#define USECS_PER_SEC	INT64_C(1000000)
#define USECS_PER_DAY	(INT64_C(86400) * USECS_PER_SEC)

/* ---- kinds and forms -------------------------------------------------- */

/* The kind of a hub column of type hubtype (format_type() text; NULL: not
 * known, a value goes as it is). Domains arrive as their base type. */
ValueKind
value_kind(const char *hubtype)
{
	static const struct
	{
		const char *name;
		ValueKind	kind;
	}			map[] = {
		{"smallint", VK_INTEGER}, {"integer", VK_INTEGER}, {"bigint", VK_INTEGER},
		{"numeric", VK_NUMERIC}, {"real", VK_FLOAT}, {"double precision", VK_FLOAT},
		{"boolean", VK_BOOL}, {"bytea", VK_BYTEA},
		{"timestamp with time zone", VK_TIMESTAMPTZ},
		{"timestamp without time zone", VK_TIMESTAMP}, {"date", VK_DATE},
		{"time without time zone", VK_TIME}, {"time with time zone", VK_TIMETZ},
		{"interval", VK_INTERVAL}, {"uuid", VK_UUID}, {"json", VK_JSON}, {"jsonb", VK_JSON},
	};
	size_t		n;

	if (hubtype == NULL)
		return VK_OTHER;
	n = strlen(hubtype);
	if (n > 2 && strcmp(hubtype + n - 2, "[]") == 0)
		return VK_ARRAY;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(hubtype, map[i].name) == 0)
			return map[i].kind;
	return VK_OTHER;
}

/* The form called name ("default", "sqlalchemy"); -1 if there is none. */
int
value_form(const char *name, ValueForm *form)
{
	if (strcmp(name, "default") == 0)
		*form = FORM_DEFAULT;
	else if (strcmp(name, "sqlalchemy") == 0)
		*form = FORM_SQLALCHEMY;
	else
		return -1;
	return 0;
}

/* ---- small helpers ---------------------------------------------------- */

/* A value for a message: quoted, at most 60 bytes, cut at a character. */
static void
shown(char *out, size_t outlen, const char *s, size_t n)
{
	size_t		k = n;

	if (k > 57)
	{
		k = 57;
		while (k > 0 && ((unsigned char) s[k] & 0xC0) == 0x80)
			k--;
	}
	snprintf(out, outlen, "\"%.*s%s\"", (int) k, s, k < n ? "..." : "");
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Replace field f's value. */
static void
field_set(JField *f, JvType type, const char *s, size_t n)
{
	char	   *t = xmalloc(n + 1);

	memcpy(t, s, n);
	t[n] = '\0';
	jfield_set_text(f, type, t, n);
}

/* Are a and b the same text? */
static bool
same_text(const JField *f, const char *s, size_t n)
{
	return f->len == n && memcmp(f->text, s, n) == 0;
}

/* ---- instants ---------------------------------------------------------- */

/*
 * The instant a JSON value names: ISO-8601 text (a 'T' or a blank; an
 * offset, 'Z' or none, which is UTC; up to nine fractional digits, rounded
 * to the microsecond) or Unix seconds, integer or real.
 */
static bool
json_instant(const JField *f, int64_t *sec, int32_t *usec)
{
	if (f->type == JV_STRING)
		return syncq_parse_instant(f->text, (int) f->len, sec, usec) == 0;
	if (f->type == JV_NUMBER)
	{
		if (strpbrk(f->text, ".eE") == NULL)
		{
			char	   *end;
			long long	v;

			errno = 0;
			v = strtoll(f->text, &end, 10);
			if (*end != '\0' || errno != 0 || v < SYNCQ_INSTANT_MIN || v > SYNCQ_INSTANT_MAX)
				return false;
			*sec = v;
			*usec = 0;
			return true;
		}
		return syncq_instant_from_real(strtod(f->text, NULL), sec, usec) == 0;
	}
	return false;
}

/*
 * An instant as SQLite's canonical UTC text, "YYYY-MM-DD HH:MM:SS" with
 * ".ffffff" when the fraction is not zero (always, in the sqlalchemy
 * form). false outside years 1-9999.
 */
static bool
sqlite_instant(Buf *b, int64_t sec, int32_t usec, ValueForm form)
{
	char		w[SYNCQ_WALL_BUFSZ];
	int			n = syncq_format_wall(w, sec, usec, 0,
									  form == FORM_SQLALCHEMY ? SYNCQ_FMT_USEC : SYNCQ_FMT_SIX);

	if (n < 6)
		return false;
	w[10] = ' ';
	buf_putn(b, w, (size_t) n - 6);	/* without "+00:00" */
	return true;
}

/* ---- times of day ------------------------------------------------------ */

static bool
two_digits(const char *s, size_t n, size_t i)
{
	return i + 2 <= n && is_digit(s[i]) && is_digit(s[i + 1]);
}

/*
 * A time of day "HH:MM[:SS[.f]]" (and for timetz an offset
 * "+HH[:MM[:SS]]") in SQLite's form: the seconds always, six fractional
 * digits when the fraction is not zero (always, in the sqlalchemy form),
 * the offset as "+HH:MM[:SS]". false if s is not such a time.
 */
static bool
sqlite_time(Buf *b, const char *s, size_t n, bool tz, ValueForm form)
{
	char		out[40];
	char		frac[7] = "000000";
	size_t		i = 8,
				o = 8;

	if (n >= 5 && n < 32 && two_digits(s, n, 0) && s[2] == ':' && two_digits(s, n, 3) &&
		(n == 5 || s[5] == '+' || s[5] == '-'))
	{
		/* no seconds: "HH:MM" is "HH:MM:00" */
		char		t[40];

		memcpy(t, s, 5);
		memcpy(t + 5, ":00", 3);
		memcpy(t + 8, s + 5, n - 5);
		return sqlite_time(b, t, n + 3, tz, form);
	}
	if (!two_digits(s, n, 0) || n < 8 || s[2] != ':' || !two_digits(s, n, 3) ||
		s[5] != ':' || !two_digits(s, n, 6))
		return false;
	memcpy(out, s, 8);
	if (i < n && s[i] == '.')
	{
		size_t		k = 0;

		for (i++; i < n && is_digit(s[i]); i++)
			if (k < 6)
				frac[k++] = s[i];
		if (k == 0)
			return false;
	}
	if (strcmp(frac, "000000") != 0 || form == FORM_SQLALCHEMY)
	{
		out[o++] = '.';
		memcpy(out + o, frac, 6);
		o += 6;
	}
	if (tz)
	{
		if (i >= n || (s[i] != '+' && s[i] != '-') || !two_digits(s, n, i + 1))
			return false;
		out[o++] = s[i];
		memcpy(out + o, s + i + 1, 2);
		o += 2;
		i += 3;
		out[o++] = ':';
		if (i < n && s[i] == ':')
		{
			if (!two_digits(s, n, i + 1))
				return false;
			memcpy(out + o, s + i + 1, 2);
			i += 3;
		}
		else
			memcpy(out + o, "00", 2);
		o += 2;
		if (i < n && s[i] == ':')
		{
			if (!two_digits(s, n, i + 1))
				return false;
			if (s[i + 1] != '0' || s[i + 2] != '0')
			{
				out[o++] = ':';
				memcpy(out + o, s + i + 1, 2);
				o += 2;
			}
			i += 3;
		}
	}
	if (i != n)
		return false;
	buf_putn(b, out, o);
	return true;
}

/* ---- intervals --------------------------------------------------------- */

/* An interval as PostgreSQL holds it. */
typedef struct
{
	int64_t		months;
	int64_t		days;
	int64_t		usec;
} Span;

/* *acc += v * m, false on overflow. */
static bool
add_mul(int64_t *acc, int64_t v, int64_t m)
{
	int64_t		p;

	return !__builtin_mul_overflow(v, m, &p) && !__builtin_add_overflow(*acc, p, acc);
}

/* An optionally signed run of digits at s[*i]; *neg tells the sign. */
static bool
read_int(const char *s, size_t n, size_t *i, int64_t *v, bool *neg)
{
	size_t		st;

	*v = 0;
	*neg = false;
	if (*i < n && (s[*i] == '+' || s[*i] == '-'))
		*neg = s[(*i)++] == '-';
	st = *i;
	while (*i < n && is_digit(s[*i]))
	{
		if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, s[*i] - '0', v))
			return false;
		(*i)++;
	}
	if (*i == st)
		return false;
	if (*neg)
		*v = -*v;
	return true;
}

/* A fraction ".ddd" at s[*i] as microseconds (digits past six dropped). */
static int64_t
read_frac(const char *s, size_t n, size_t *i)
{
	int64_t		us = 0;
	int			k = 0;

	for ((*i)++; *i < n && is_digit(s[*i]); (*i)++)
		if (k++ < 6)
			us = us * 10 + (s[*i] - '0');
	for (; k < 6; k++)
		us *= 10;
	return us;
}

/* An ISO 8601 duration with designators: "P1Y2M3DT4H5M6.5S", "PT-1H". */
static bool
span_iso_parse(const char *s, size_t n, Span *sp)
{
	size_t		i = 1;
	bool		time = false,
				any = false;

	memset(sp, 0, sizeof(*sp));
	if (n < 2 || s[0] != 'P')
		return false;
	while (i < n)
	{
		int64_t		v,
					frac = 0;
		bool		neg,
					ok;
		char		d;

		if (s[i] == 'T' && !time)
		{
			time = true;
			i++;
			continue;
		}
		if (!read_int(s, n, &i, &v, &neg))
			return false;
		if (i < n && s[i] == '.')
			frac = read_frac(s, n, &i);
		if (i >= n)
			return false;
		d = s[i++];
		if (frac != 0 && !(time && d == 'S'))
			return false;
		if (!time)
			ok = d == 'Y' ? add_mul(&sp->months, v, 12) :
				d == 'M' ? add_mul(&sp->months, v, 1) :
				d == 'W' ? add_mul(&sp->days, v, 7) :
				d == 'D' ? add_mul(&sp->days, v, 1) : false;
		else
			ok = d == 'H' ? add_mul(&sp->usec, v, 3600 * USECS_PER_SEC) :
				d == 'M' ? add_mul(&sp->usec, v, 60 * USECS_PER_SEC) :
				d == 'S' ? add_mul(&sp->usec, v, USECS_PER_SEC) &&
				add_mul(&sp->usec, neg ? -frac : frac, 1) : false;
		if (!ok)
			return false;
		any = true;
	}
	return any;
}

/* PostgreSQL's own style: "1 year 2 mons -3 days +04:05:06.7". */
static bool
span_pg_parse(const char *s, size_t n, Span *sp)
{
	size_t		i = 0;
	bool		any = false;

	memset(sp, 0, sizeof(*sp));
	for (;;)
	{
		int64_t		v;
		bool		neg;
		size_t		w;

		while (i < n && s[i] == ' ')
			i++;
		if (i >= n)
			return any;
		if (!read_int(s, n, &i, &v, &neg))
			return false;
		if (i < n && s[i] == ':')
		{
			/* the time, last: [-]H:MM:SS[.f] */
			int64_t		mm,
						ss,
						frac = 0,
						t = 0;
			bool		dummy;

			i++;
			if (!two_digits(s, n, i) || !read_int(s, n, &i, &mm, &dummy) || dummy ||
				i >= n || s[i++] != ':' || !two_digits(s, n, i) ||
				!read_int(s, n, &i, &ss, &dummy) || dummy)
				return false;
			if (i < n && s[i] == '.')
				frac = read_frac(s, n, &i);
			if (!add_mul(&t, neg ? -v : v, 3600 * USECS_PER_SEC) ||
				!add_mul(&t, mm, 60 * USECS_PER_SEC) || !add_mul(&t, ss, USECS_PER_SEC) ||
				!add_mul(&t, frac, 1) || !add_mul(&sp->usec, neg ? -t : t, 1))
				return false;
			while (i < n && s[i] == ' ')
				i++;
			return i == n;
		}
		if (i >= n || s[i++] != ' ')
			return false;
		for (w = i; i < n && s[i] >= 'a' && s[i] <= 'z'; i++)
			;
		if ((i - w == 4 || i - w == 5) && strncmp(s + w, "years", i - w) == 0)
		{
			if (!add_mul(&sp->months, v, 12))
				return false;
		}
		else if ((i - w == 3 || i - w == 4) && strncmp(s + w, "mons", i - w) == 0)
		{
			if (!add_mul(&sp->months, v, 1))
				return false;
		}
		else if ((i - w == 3 || i - w == 4) && strncmp(s + w, "days", i - w) == 0)
		{
			if (!add_mul(&sp->days, v, 1))
				return false;
		}
		else
			return false;
		any = true;
	}
}

static bool
span_parse(const char *s, size_t n, Span *sp)
{
	return span_iso_parse(s, n, sp) || span_pg_parse(s, n, sp);
}

static void
iso_part(Buf *b, int64_t v, char designator)
{
	if (v != 0)
		buf_printf(b, "%lld%c", (long long) v, designator);
}

/* An interval as PostgreSQL writes it with IntervalStyle iso_8601. */
static void
span_iso(Buf *b, const Span *sp)
{
	int64_t		t = sp->usec;
	int64_t		hour = t / (3600 * USECS_PER_SEC);
	int64_t		min,
				sec,
				fsec;

	t -= hour * 3600 * USECS_PER_SEC;
	min = t / (60 * USECS_PER_SEC);
	t -= min * 60 * USECS_PER_SEC;
	sec = t / USECS_PER_SEC;
	fsec = t - sec * USECS_PER_SEC;
	if (sp->months == 0 && sp->days == 0 && sp->usec == 0)
	{
		buf_puts(b, "PT0S");
		return;
	}
	buf_putc(b, 'P');
	iso_part(b, sp->months / 12, 'Y');
	iso_part(b, sp->months % 12, 'M');
	iso_part(b, sp->days, 'D');
	if (sp->usec != 0)
		buf_putc(b, 'T');
	iso_part(b, hour, 'H');
	iso_part(b, min, 'M');
	if (sec != 0 || fsec != 0)
	{
		buf_printf(b, "%s%lld", sec < 0 || fsec < 0 ? "-" : "", (long long) llabs(sec));
		if (fsec != 0)
		{
			char		digits[24];
			int			k = 6;

			snprintf(digits, sizeof(digits), "%06lld", (long long) llabs(fsec));
			while (k > 0 && digits[k - 1] == '0')
				k--;
			buf_printf(b, ".%.*s", k, digits);
		}
		buf_putc(b, 'S');
	}
}

/* ---- toward SQLite ----------------------------------------------------- */

static void
sql_text(SqlValue *out, const char *p, size_t n)
{
	out->type = SQLITE_TEXT;
	out->p = p;
	out->n = n;
}

static void
sql_own_text(SqlValue *out)
{
	sql_text(out, out->own.p ? out->own.p : "", out->own.len);
}

/* How many significant digits a decimal number text has. */
static int
sig_digits(const char *s)
{
	int			n = 0,
				trailing_zeros = 0;
	bool		started = false;

	for (; *s && *s != 'e' && *s != 'E'; s++)
	{
		if (!is_digit(*s))
			continue;
		if (*s == '0' && !started)
			continue;
		started = true;
		n++;
		trailing_zeros = *s == '0' ? trailing_zeros + 1 : 0;
	}
	return n - trailing_zeros;
}

/*
 * A number as SQLite holds it: INTEGER if integral and within 64 bits;
 * else REAL for a float column or up to 15 significant digits (a double
 * holds those exactly); else TEXT with the digits.
 */
static void
sql_number(SqlValue *out, const JField *f, ValueKind kind)
{
	const char *s = f->text;

	if (strpbrk(s, ".eE") == NULL)
	{
		char	   *end;
		long long	v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (*end == '\0' && errno == 0)
		{
			out->type = SQLITE_INTEGER;
			out->i = v;
			return;
		}
	}
	if (kind == VK_FLOAT || sig_digits(s) <= 15)
	{
		out->type = SQLITE_FLOAT;
		out->d = strtod(s, NULL);
	}
	else
		sql_text(out, f->text, f->len);
}

/* What every type does with a value no rule of its own took. */
static void
sql_plain(SqlValue *out, const JField *f, ValueKind kind)
{
	switch (f->type)
	{
		case JV_NULL:
			out->type = SQLITE_NULL;
			break;
		case JV_BOOL:
			out->type = SQLITE_INTEGER;
			out->i = f->b;
			break;
		case JV_NUMBER:
			sql_number(out, f, kind);
			break;
		case JV_STRING:
		case JV_RAW:
			sql_text(out, f->text, f->len);
			break;
		case JV_BLOB:
			out->type = SQLITE_BLOB;
			out->p = f->text;
			out->n = f->len;
			break;
	}
}

/* An interval in a column's form; -1 (why) if the form cannot hold it. */
static int
sql_interval(SqlValue *out, const JField *f, const Span *sp, ValueForm form,
			 char *why, size_t whylen)
{
	int64_t		us = 0;
	char		v[80];

	if (form == FORM_DEFAULT)
	{
		span_iso(&out->own, sp);
		sql_own_text(out);
		return 0;
	}
	shown(v, sizeof(v), f->text, f->len);
	if (sp->months != 0)
	{
		snprintf(why, whylen, "column \"%s\": interval %s has months, which the sqlalchemy form (the epoch plus the interval) cannot hold: a month has no fixed length",
				 f->key, v);
		return -1;
	}
	if (!add_mul(&us, sp->days, USECS_PER_DAY) || !add_mul(&us, sp->usec, 1) ||
		!sqlite_instant(&out->own, us / USECS_PER_SEC - (us % USECS_PER_SEC < 0),
						(int32_t) (((us % USECS_PER_SEC) + USECS_PER_SEC) % USECS_PER_SEC), form))
	{
		snprintf(why, whylen, "column \"%s\": interval %s is beyond the sqlalchemy form (the epoch plus the interval, years 1-9999)",
				 f->key, v);
		return -1;
	}
	sql_own_text(out);
	return 0;
}

/*
 * The SQLite value of the hub's JSON value f, for a column of kind kind in
 * form form. 0, or -1 if this value cannot be written here (why names it;
 * the change is set aside). out->own may hold memory: sqlvalue_free().
 */
int
value_for_sqlite(const JField *f, ValueKind kind, ValueForm form, SqlValue *out,
				 char *why, size_t whylen)
{
	int64_t		sec;
	int32_t		usec;
	char		uuid[37];
	Span		sp;

	memset(out, 0, sizeof(*out));
	out->type = SQLITE_NULL;
	if (f->type == JV_NULL)
		return 0;
	switch (kind)
	{
		case VK_JSON:
			/* the document's JSON text, whatever it is */
			if (f->type == JV_RAW)
				sql_text(out, f->text, f->len);
			else
			{
				buf_json_value(&out->own, f);
				sql_own_text(out);
			}
			return 0;
		case VK_TIMESTAMPTZ:
		case VK_TIMESTAMP:
			if (json_instant(f, &sec, &usec) && sqlite_instant(&out->own, sec, usec, form))
			{
				sql_own_text(out);
				return 0;
			}
			break;
		case VK_TIME:
		case VK_TIMETZ:
			if (f->type == JV_STRING && sqlite_time(&out->own, f->text, f->len, kind == VK_TIMETZ, form))
			{
				sql_own_text(out);
				return 0;
			}
			break;
		case VK_INTERVAL:
			if (f->type == JV_STRING && span_parse(f->text, f->len, &sp))
				return sql_interval(out, f, &sp, form, why, whylen);
			break;
		case VK_UUID:
			if (f->type == JV_STRING && uuid_canonical(f->text, f->len, uuid))
			{
				buf_putn(&out->own, uuid, 36);
				sql_own_text(out);
				return 0;
			}
			break;
		case VK_FLOAT:
		case VK_NUMERIC:
			/* SQLite holds +-Infinity as REAL; NaN (which it cannot) as text */
			if (f->type == JV_STRING && (same_text(f, "Infinity", 8) || same_text(f, "-Infinity", 9)))
			{
				out->type = SQLITE_FLOAT;
				out->d = f->text[0] == '-' ? -HUGE_VAL : HUGE_VAL;
				return 0;
			}
			break;
		case VK_BYTEA:
			if (f->type == JV_STRING)
			{
				int			bad;

				if (f->len >= 2 && f->text[0] == '\\' && f->text[1] == 'x')
					bad = hex_decode(f->text + 2, f->len - 2, &out->own);
				else
					bad = base64_decode(f->text, f->len, &out->own);
				if (bad)
				{
					char		v[80];

					shown(v, sizeof(v), f->text, f->len);
					snprintf(why, whylen, "column \"%s\": bytea value %s is neither base64 nor hex", f->key, v);
					return -1;
				}
				out->type = SQLITE_BLOB;
				out->p = out->own.p ? out->own.p : "";
				out->n = out->own.len;
				return 0;
			}
			break;
		default:
			break;
	}
	sql_plain(out, f, kind);
	return 0;
}

void
sqlvalue_free(SqlValue *v)
{
	buf_free(&v->own);
}

/* ---- what the uploader holds ------------------------------------------- */

/* Do two SQLite values hold the same? Numbers by value, INTEGER or REAL. */
static bool
same_sqlvalue(const SqlValue *a, const SqlValue *b)
{
	bool		an = a->type == SQLITE_INTEGER || a->type == SQLITE_FLOAT,
				bn = b->type == SQLITE_INTEGER || b->type == SQLITE_FLOAT;

	if (an && bn)
	{
		if (a->type == SQLITE_INTEGER && b->type == SQLITE_INTEGER)
			return a->i == b->i;
		return (a->type == SQLITE_INTEGER ? (double) a->i : a->d) ==
			(b->type == SQLITE_INTEGER ? (double) b->i : b->d);
	}
	if (a->type != b->type)
		return false;
	if (a->type == SQLITE_NULL)
		return true;
	return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/*
 * Does the client that sent a value of this kind give it the form a
 * download writes itself, once the hub has it (client/respell.c)? Text of
 * these kinds, and instants as numbers; key columns aside.
 */
bool
value_respelt_kind(ValueKind kind)
{
	switch (kind)
	{
		case VK_TIMESTAMPTZ:
		case VK_TIMESTAMP:
		case VK_TIME:
		case VK_TIMETZ:
		case VK_INTERVAL:
		case VK_UUID:
		case VK_FLOAT:
		case VK_NUMERIC:
			return true;
		default:
			return false;
	}
}

/*
 * The value the client holds of `sent` once its own respelling ran
 * (value_respelt_kind): as the hub reads it (into *f, its text the
 * caller's to free), written as a download writes it (*out may point into
 * f's text). false if the client keeps it as sent.
 */
static bool
respelt_value(const JField *sent, ValueKind kind, JField *f, SqlValue *out)
{
	char		why[160];

	if (!value_respelt_kind(kind) || sent->type == JV_NULL ||
		(sent->type != JV_STRING && kind != VK_TIMESTAMPTZ && kind != VK_TIMESTAMP))
		return false;
	*f = *sent;
	f->own = 0;					/* the key is sent's */
	jfield_set_text(f, sent->type, xmalloc(sent->len + 1), sent->len);
	memcpy(f->text, sent->text, sent->len);
	f->text[sent->len] = '\0';
	if (value_for_hub(f, kind, why, sizeof(why)) >= 0 &&
		value_for_sqlite(f, kind, FORM_DEFAULT, out, why, sizeof(why)) == 0)
		return true;
	sqlvalue_free(out);
	jfield_release(f);
	f->text = NULL;
	return false;
}

/*
 * Would a client that sent `sent` (as its queue held it: a number as its
 * INTEGER or REAL, text, a blob) hold another value if it took `stored`,
 * the hub's value of a column of that kind, as syncqd writes it
 * (value_for_sqlite, in the default form)? 1 sent for a numeric(10,2)
 * stored as 1.00 is no difference; 1.23456 stored as 1.2346, an upper-case
 * uuid key stored in lower case, a trigger's write are. respelt: the
 * client gives the value the hub's form itself (a column not in the key;
 * respelt_value), so another spelling of the same value is no difference.
 */
bool
value_differs_for_client(const JField *sent, const JField *stored, ValueKind kind, bool respelt)
{
	SqlValue	s = {0},
				h = {0};
	JField		own = {0};
	char		why[160];
	bool		differs = true;

	if (value_for_sqlite(stored, kind, FORM_DEFAULT, &h, why, sizeof(why)) == 0)
	{
		if (!respelt || !respelt_value(sent, kind, &own, &s))
			sql_plain(&s, sent, VK_FLOAT);
		differs = !same_sqlvalue(&s, &h);
		sqlvalue_free(&s);
	}
	sqlvalue_free(&h);
	jfield_release(&own);
	return differs;
}

/*
 * Does a column of `stored` (the hub's row) that `sent` (the client's)
 * also has differ so? Columns the client did not send it cannot hold.
 * kind(arg, col, &respelt) gives each column's kind, and whether the
 * client respells its value itself.
 */
bool
row_differs_for_client(const JObject *sent, const JObject *stored,
					   ValueKind (*kind) (const void *arg, const char *col, bool *respelt),
					   const void *arg)
{
	for (int i = 0; i < stored->n; i++)
	{
		const JField *s = jobj_get(sent, stored->f[i].key);
		bool		respelt = false;
		ValueKind	k;

		if (s == NULL)
			continue;
		k = kind(arg, stored->f[i].key, &respelt);
		if (value_differs_for_client(s, &stored->f[i], k, respelt))
			return true;
	}
	return false;
}

/* ---- toward the hub ---------------------------------------------------- */

/*
 * uuid text in any spelling PostgreSQL reads (any case, braces, a hyphen
 * after any group of four digits) as its canonical spelling: lower case,
 * 8-4-4-4-12. false if s is not a uuid.
 */
bool
uuid_canonical(const char *s, size_t n, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t		i = 0;

	if (n > 0 && s[0] == '{')
	{
		if (s[n - 1] != '}')
			return false;
		i = 1;
		n--;
	}
	for (int k = 0; k < 16; k++)
	{
		int			hi,
					lo;

		if (i + 2 > n)
			return false;
		hi = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
			(s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f' ? (s[i] | 0x20) - 'a' + 10 : -1;
		lo = s[i + 1] >= '0' && s[i + 1] <= '9' ? s[i + 1] - '0' :
			(s[i + 1] | 0x20) >= 'a' && (s[i + 1] | 0x20) <= 'f' ? (s[i + 1] | 0x20) - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return false;
		b[k] = (unsigned char) (hi << 4 | lo);
		i += 2;
		if (i < n && s[i] == '-' && k % 2 == 1 && k < 15)
			i++;
	}
	if (i != n)
		return false;
	for (int k = 0, o = 0; k < 16; k++)
	{
		if (k == 4 || k == 6 || k == 8 || k == 10)
			out[o++] = '-';
		out[o++] = hex[b[k] >> 4];
		out[o++] = hex[b[k] & 15];
	}
	out[36] = '\0';
	return true;
}

/* Set f to text s[0..n) unless it is that already; 1 if it changed. */
static int
respell(JField *f, JvType type, const char *s, size_t n)
{
	if (f->type == type && same_text(f, s, n))
		return 0;
	field_set(f, type, s, n);
	return 1;
}

/* The first character of s that is not a JSON blank, or 0. */
static char
first_char(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return s[i];
	return 0;
}

/*
 * Spell a client's value f (as its queue holds it) as the hub reads it for
 * a column of kind kind, in place: instants as ISO-8601 in UTC (from any
 * ISO-8601 text, naive meaning UTC, or Unix seconds), uuids in lower case,
 * JSON text as the document itself, a JSON array as an array, an interval
 * as an ISO 8601 duration (from the sqlalchemy form too), 0/1 as booleans.
 * 1 if f changed, 0 if not, -1 if the hub could only misread it (why).
 */
int
value_for_hub(JField *f, ValueKind kind, char *why, size_t whylen)
{
	int64_t		sec;
	int32_t		usec;
	char		w[SYNCQ_WALL_BUFSZ];
	char		e[128];
	Span		sp;
	int			n;

	if (f->type == JV_NULL)
		return 0;
	switch (kind)
	{
		case VK_TIMESTAMPTZ:
		case VK_TIMESTAMP:
			if (json_instant(f, &sec, &usec) &&
				(n = syncq_format_wall(w, sec, usec, 0, SYNCQ_FMT_TRIM)) > 0)
				return respell(f, JV_STRING, w, (size_t) n);
			return 0;
		case VK_UUID:
			if (f->type == JV_STRING && uuid_canonical(f->text, f->len, w))
				return respell(f, JV_STRING, w, 36);
			return 0;
		case VK_JSON:
			/* text that is not one JSON value goes on as it is: the hub's
			 * apply refuses it naming the column (hub/apply.c) */
			if (f->type == JV_STRING && json_check(f->text, f->len, e, sizeof(e)) == 0)
			{
				f->type = JV_RAW;
				return 1;
			}
			if (f->type == JV_BLOB)
			{
				snprintf(why, whylen, "column \"%s\": a blob is not JSON", f->key);
				return -1;
			}
			return 0;
		case VK_ARRAY:
			/* a JSON array (JSON null: none); "{1,2}" goes as it is */
			if (f->type == JV_STRING && (first_char(f->text, f->len) == '[' ||
										 first_char(f->text, f->len) == 'n') &&
				json_check(f->text, f->len, e, sizeof(e)) == 0)
			{
				f->type = first_char(f->text, f->len) == 'n' ? JV_NULL : JV_RAW;
				return 1;
			}
			return 0;
		case VK_INTERVAL:
			if (f->type != JV_STRING)
				return 0;
			if (syncq_parse_instant(f->text, (int) f->len, &sec, &usec) == 0)
			{
				/* the sqlalchemy form: the epoch plus the interval */
				int64_t		us = 0;

				if (!add_mul(&us, sec, USECS_PER_SEC) || !add_mul(&us, usec, 1))
					return 0;
				sp.months = 0;
				sp.days = us / USECS_PER_DAY;
				sp.usec = us - sp.days * USECS_PER_DAY;
			}
			else if (!span_parse(f->text, f->len, &sp))
				return 0;
			{
				Buf			b = {0};
				int			rc;

				span_iso(&b, &sp);
				rc = respell(f, JV_STRING, b.p, b.len);
				buf_free(&b);
				return rc;
			}
		case VK_BOOL:
			if (f->type == JV_NUMBER && (same_text(f, "0", 1) || same_text(f, "1", 1)))
			{
				f->b = f->text[0] == '1';
				if (f->b)
					field_set(f, JV_BOOL, "true", 4);
				else
					field_set(f, JV_BOOL, "false", 5);
				return 1;
			}
			return 0;
		default:
			return 0;
	}
}
