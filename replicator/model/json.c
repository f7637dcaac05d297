/*
 * json.c — the one JSON codec of rows (json.h).
 *
 *   jobj_parse               read a flat object
 *   jobj_free, jobj_get      free one, find a field
 *   buf_json_string          write a string
 *   buf_json_value           write a field's value
 *   buf_json_object          write an object (blobs as base64)
 *   buf_json_object_tagged   write an object (blobs as {"$hex": ...})
 *
 * Queue rows carry flat JSON objects (docs/queue.md). syncqd must keep
 * numbers exactly as written (a numeric of 30 digits, a 64-bit integer),
 * which general JSON libraries turn into doubles, so this reader keeps every
 * number as its text, every nested object or array as its raw JSON text,
 * and decodes strings to UTF-8. The tagged blob {"$hex":"..."} of the SQLite
 * queue is recognised and decoded to bytes.
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "model/json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer --------------------------------------------------------- */

/* Append s (n bytes of UTF-8) as a JSON string, escaped as PostgreSQL does. */
void
buf_json_string(Buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	buf_reserve(b, n + 2);
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];
		size_t		run = i;

		/* a run that needs no escape goes in one copy */
		while (run < n && (unsigned char) s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i)
		{
			buf_putn(b, s + i, run - i);
			i = run - 1;
			continue;
		}
		switch (c)
		{
			case '"':
				buf_putn(b, "\\\"", 2);
				break;
			case '\\':
				buf_putn(b, "\\\\", 2);
				break;
			case '\b':
				buf_putn(b, "\\b", 2);
				break;
			case '\f':
				buf_putn(b, "\\f", 2);
				break;
			case '\n':
				buf_putn(b, "\\n", 2);
				break;
			case '\r':
				buf_putn(b, "\\r", 2);
				break;
			case '\t':
				buf_putn(b, "\\t", 2);
				break;
			default:
				if (c < 0x20)
				{
					char		u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

					buf_putn(b, u, 6);
				}
				else
					buf_putc(b, (char) c);
		}
	}
	buf_putc(b, '"');
}

/* ---- reader ----------------------------------------------------------- */

typedef struct
{
	const char *s;
	size_t		n;
	size_t		i;
	char	   *err;
	size_t		errlen;
} Scan;

static void
skip_ws(Scan *sc)
{
	while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' ||
							 sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
		sc->i++;
}

static int
fail(Scan *sc, const char *what)
{
	snprintf(sc->err, sc->errlen, "%s at offset %zu", what, sc->i);
	return -1;
}

static void
put_utf8(Buf *b, unsigned cp)
{
	if (cp < 0x80)
		buf_putc(b, (char) cp);
	else if (cp < 0x800)
	{
		buf_putc(b, (char) (0xC0 | cp >> 6));
		buf_putc(b, (char) (0x80 | (cp & 63)));
	}
	else if (cp < 0x10000)
	{
		buf_putc(b, (char) (0xE0 | cp >> 12));
		buf_putc(b, (char) (0x80 | ((cp >> 6) & 63)));
		buf_putc(b, (char) (0x80 | (cp & 63)));
	}
	else
	{
		buf_putc(b, (char) (0xF0 | cp >> 18));
		buf_putc(b, (char) (0x80 | ((cp >> 12) & 63)));
		buf_putc(b, (char) (0x80 | ((cp >> 6) & 63)));
		buf_putc(b, (char) (0x80 | (cp & 63)));
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
read_hex4(Scan *sc, unsigned *out)
{
	unsigned	v = 0;

	if (sc->i + 4 > sc->n)
		return fail(sc, "truncated \\u escape");
	for (int k = 0; k < 4; k++)
	{
		int			h = hexval((unsigned char) sc->s[sc->i++]);

		if (h < 0)
			return fail(sc, "bad \\u escape");
		v = v << 4 | (unsigned) h;
	}
	*out = v;
	return 0;
}

/* Read a JSON string at sc->i (on the opening quote) into out, decoded. */
static int
read_string(Scan *sc, Buf *out)
{
	buf_reset(out);
	sc->i++;
	while (sc->i < sc->n)
	{
		unsigned char c = (unsigned char) sc->s[sc->i++];

		if (c == '"')
			return 0;
		if (c < 0x20)
			return fail(sc, "control character in string");
		if (c != '\\')
		{
			buf_putc(out, (char) c);
			continue;
		}
		if (sc->i >= sc->n)
			break;
		c = (unsigned char) sc->s[sc->i++];
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				buf_putc(out, (char) c);
				break;
			case 'b':
				buf_putc(out, '\b');
				break;
			case 'f':
				buf_putc(out, '\f');
				break;
			case 'n':
				buf_putc(out, '\n');
				break;
			case 'r':
				buf_putc(out, '\r');
				break;
			case 't':
				buf_putc(out, '\t');
				break;
			case 'u':
				{
					unsigned	cp,
								lo;

					if (read_hex4(sc, &cp) < 0)
						return -1;
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						if (sc->i + 2 > sc->n || sc->s[sc->i] != '\\' || sc->s[sc->i + 1] != 'u')
							return fail(sc, "lone surrogate");
						sc->i += 2;
						if (read_hex4(sc, &lo) < 0)
							return -1;
						if (lo < 0xDC00 || lo > 0xDFFF)
							return fail(sc, "bad surrogate pair");
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					else if (cp >= 0xDC00 && cp <= 0xDFFF)
						return fail(sc, "lone surrogate");
					if (cp == 0)
						return fail(sc, "\\u0000 is not allowed");
					put_utf8(out, cp);
					break;
				}
			default:
				return fail(sc, "bad escape");
		}
	}
	return fail(sc, "unterminated string");
}

/* Skip one JSON value of any kind (for raw nested objects and arrays). */
static int
skip_value(Scan *sc, int depth)
{
	Buf			tmp = {0};
	int			rc = 0;

	if (depth > 64)
		return fail(sc, "nesting too deep");
	skip_ws(sc);
	if (sc->i >= sc->n)
		return fail(sc, "unexpected end");
	char		c = sc->s[sc->i];

	if (c == '"')
	{
		rc = read_string(sc, &tmp);
		buf_free(&tmp);
		return rc;
	}
	if (c == '{' || c == '[')
	{
		char		close = c == '{' ? '}' : ']';

		sc->i++;
		skip_ws(sc);
		if (sc->i < sc->n && sc->s[sc->i] == close)
		{
			sc->i++;
			return 0;
		}
		for (;;)
		{
			if (c == '{')
			{
				skip_ws(sc);
				if (sc->i >= sc->n || sc->s[sc->i] != '"')
					return fail(sc, "expected key");
				if (read_string(sc, &tmp) < 0)
				{
					buf_free(&tmp);
					return -1;
				}
				buf_free(&tmp);
				skip_ws(sc);
				if (sc->i >= sc->n || sc->s[sc->i] != ':')
					return fail(sc, "expected ':'");
				sc->i++;
			}
			if (skip_value(sc, depth + 1) < 0)
				return -1;
			skip_ws(sc);
			if (sc->i < sc->n && sc->s[sc->i] == ',')
			{
				sc->i++;
				continue;
			}
			if (sc->i < sc->n && sc->s[sc->i] == close)
			{
				sc->i++;
				return 0;
			}
			return fail(sc, "expected ',' or end of container");
		}
	}
	if (c == '-' || isdigit((unsigned char) c))
	{
		size_t		st = sc->i;

		if (sc->s[sc->i] == '-')
			sc->i++;
		if (sc->i >= sc->n || !isdigit((unsigned char) sc->s[sc->i]))
			return fail(sc, "bad number");
		if (sc->s[sc->i] == '0' && sc->i + 1 < sc->n && isdigit((unsigned char) sc->s[sc->i + 1]))
			return fail(sc, "leading zero in number");
		while (sc->i < sc->n && isdigit((unsigned char) sc->s[sc->i]))
			sc->i++;
		if (sc->i < sc->n && sc->s[sc->i] == '.')
		{
			sc->i++;
			if (sc->i >= sc->n || !isdigit((unsigned char) sc->s[sc->i]))
				return fail(sc, "bad number");
			while (sc->i < sc->n && isdigit((unsigned char) sc->s[sc->i]))
				sc->i++;
		}
		if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E'))
		{
			sc->i++;
			if (sc->i < sc->n && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
				sc->i++;
			if (sc->i >= sc->n || !isdigit((unsigned char) sc->s[sc->i]))
				return fail(sc, "bad number");
			while (sc->i < sc->n && isdigit((unsigned char) sc->s[sc->i]))
				sc->i++;
		}
		(void) st;
		return 0;
	}
	if (sc->n - sc->i >= 4 && memcmp(sc->s + sc->i, "true", 4) == 0)
	{
		sc->i += 4;
		return 0;
	}
	if (sc->n - sc->i >= 5 && memcmp(sc->s + sc->i, "false", 5) == 0)
	{
		sc->i += 5;
		return 0;
	}
	if (sc->n - sc->i >= 4 && memcmp(sc->s + sc->i, "null", 4) == 0)
	{
		sc->i += 4;
		return 0;
	}
	return fail(sc, "unexpected character");
}

/*
 * Parse a flat JSON object. Values keep their kind: numbers and nested
 * containers as raw text, strings decoded, {"$hex": "..."} as bytes.
 * Returns 0, or -1 with a message in err.
 */
int
jobj_parse(const char *s, size_t n, JObject *out, char *err, size_t errlen)
{
	Scan		sc = {s, n, 0, err, errlen};
	Buf			tmp = {0};

	memset(out, 0, sizeof(*out));
	skip_ws(&sc);
	if (sc.i >= n || s[sc.i] != '{')
		return fail(&sc, "expected a JSON object");
	sc.i++;
	skip_ws(&sc);
	if (sc.i < n && s[sc.i] == '}')
	{
		sc.i++;
		goto trailing;
	}
	for (;;)
	{
		JField		f = {0};

		skip_ws(&sc);
		if (sc.i >= n || s[sc.i] != '"')
			goto bad_key;
		if (read_string(&sc, &tmp) < 0)
			goto error;
		f.key = xstrndup(tmp.p ? tmp.p : "", tmp.len);
		skip_ws(&sc);
		if (sc.i >= n || s[sc.i] != ':')
		{
			free(f.key);
			fail(&sc, "expected ':'");
			goto error;
		}
		sc.i++;
		skip_ws(&sc);
		if (sc.i >= n)
		{
			free(f.key);
			fail(&sc, "unexpected end");
			goto error;
		}
		size_t		st = sc.i;
		char		c = s[sc.i];

		if (c == '"')
		{
			if (read_string(&sc, &tmp) < 0)
			{
				free(f.key);
				goto error;
			}
			f.type = JV_STRING;
			f.text = xstrndup(tmp.p ? tmp.p : "", tmp.len);
			f.len = tmp.len;
		}
		else
		{
			if (skip_value(&sc, 0) < 0)
			{
				free(f.key);
				goto error;
			}
			size_t		len = sc.i - st;

			if (c == 'n')
				f.type = JV_NULL;
			else if (c == 't' || c == 'f')
			{
				f.type = JV_BOOL;
				f.b = c == 't';
			}
			else if (c == '{' || c == '[')
				f.type = JV_RAW;
			else
				f.type = JV_NUMBER;
			if (f.type != JV_NULL)
			{
				f.text = xstrndup(s + st, len);
				f.len = len;
			}
			if (f.type == JV_RAW && c == '{')
			{
				/* the SQLite queue's tagged blob {"$hex":"..."} */
				JObject		inner;
				char		e2[64];

				if (jobj_parse(s + st, len, &inner, e2, sizeof(e2)) == 0)
				{
					if (inner.n == 1 && strcmp(inner.f[0].key, "$hex") == 0 &&
						inner.f[0].type == JV_STRING &&
						hex_decode(inner.f[0].text, inner.f[0].len, &tmp) == 0)
					{
						free(f.text);
						f.type = JV_BLOB;
						f.len = tmp.len;
						f.text = xstrndup(tmp.p ? tmp.p : "", tmp.len);
					}
					jobj_free(&inner);
				}
			}
		}
		if (out->n == out->cap)
		{
			out->cap = out->cap ? out->cap * 2 : 8;
			out->f = xrealloc(out->f, out->cap * sizeof(JField));
		}
		out->f[out->n++] = f;
		skip_ws(&sc);
		if (sc.i < n && s[sc.i] == ',')
		{
			sc.i++;
			continue;
		}
		if (sc.i < n && s[sc.i] == '}')
		{
			sc.i++;
			break;
		}
		fail(&sc, "expected ',' or '}'");
		goto error;
	}
trailing:
	skip_ws(&sc);
	if (sc.i != n)
	{
		fail(&sc, "trailing characters after the object");
		goto error;
	}
	buf_free(&tmp);
	return 0;

bad_key:
	fail(&sc, "expected a key");
error:
	buf_free(&tmp);
	jobj_free(out);
	return -1;
}

void
jobj_free(JObject *o)
{
	for (int i = 0; i < o->n; i++)
	{
		free(o->f[i].key);
		free(o->f[i].text);
	}
	free(o->f);
	memset(o, 0, sizeof(*o));
}

const JField *
jobj_get(const JObject *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->f[i].key, key) == 0)
			return &o->f[i];
	return NULL;
}

/* Append one field's value as canonical JSON (blobs as base64 strings). */
void
buf_json_value(Buf *b, const JField *f)
{
	switch (f->type)
	{
		case JV_NULL:
			buf_puts(b, "null");
			break;
		case JV_BOOL:
			buf_puts(b, f->b ? "true" : "false");
			break;
		case JV_NUMBER:
		case JV_RAW:
			buf_putn(b, f->text, f->len);
			break;
		case JV_STRING:
			buf_json_string(b, f->text, f->len);
			break;
		case JV_BLOB:
			{
				Buf			t = {0};

				buf_base64(&t, (const unsigned char *) f->text, f->len);
				buf_json_string(b, t.p ? t.p : "", t.len);
				buf_free(&t);
				break;
			}
	}
}

static void
json_object(Buf *b, const JObject *o, bool tagged)
{
	buf_putc(b, '{');
	for (int i = 0; i < o->n; i++)
	{
		if (i)
			buf_putc(b, ',');
		buf_json_string(b, o->f[i].key, strlen(o->f[i].key));
		buf_putc(b, ':');
		if (tagged && o->f[i].type == JV_BLOB)
		{
			buf_puts(b, "{\"$hex\":\"");
			buf_hex(b, (const unsigned char *) o->f[i].text, o->f[i].len);
			buf_puts(b, "\"}");
		}
		else
			buf_json_value(b, &o->f[i]);
	}
	buf_putc(b, '}');
}

/* Append the object as compact canonical JSON, keys in their order. */
void
buf_json_object(Buf *b, const JObject *o)
{
	json_object(b, o, false);
}

/*
 * The same, but blobs as the queue's tagged {"$hex":"..."}: text that
 * jobj_parse() reads back to the same object (how changes travel to serve).
 */
void
buf_json_object_tagged(Buf *b, const JObject *o)
{
	json_object(b, o, true);
}
