/*
 * json.c — the one JSON codec of syncqd (json.h).
 *
 * Reading (a cursor, JsonIn):
 *   jin_init, jin_free      over one document; strings checked as UTF-8 or not
 *   jin_peek                the kind of the next value
 *   jin_object, jin_key     an object, key by key
 *   jin_array, jin_item     an array, element by element
 *   jin_string, jin_int,
 *   jin_bool, jin_null      one value of a kind
 *   jin_skip, jin_span      any value (its text)
 *   jin_row                 a flat object into a JObject
 *   jin_row_check           ... only checked, its fields counted
 *   jin_end                 nothing but white space after
 *   jobj_parse              a whole text that is one flat object
 *   jobj_free, jobj_get     free one, find a field
 *   json_check              is a text exactly one JSON value
 *
 * Writing:
 *   buf_json_string         a string, escaped as PostgreSQL does
 *   buf_json_value          a field's value (blobs as base64)
 *   buf_json_object         a flat object, compact (blobs as base64)
 *   buf_json_object_tagged  ... blobs as {"$hex": ...}
 *   jout_*                  a document, value by value (JsonOut): containers,
 *                           keys, strings, numbers, literals, JSON text as it
 *                           is (jout_raw), a row (jout_row), a field (jout_field)
 *
 * Numbers are kept as their text and nested containers of a row as their
 * raw text, so nothing is lost; the tagged blob {"$hex":"..."} of the
 * SQLite queue is read as bytes.
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "model/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the cursor ------------------------------------------------------------ */

void
jin_init(JsonIn *in, const char *s, size_t n, bool utf8)
{
	memset(in, 0, sizeof(*in));
	in->s = s;
	in->n = n;
	in->utf8 = utf8;
}

void
jin_free(JsonIn *in)
{
	buf_free(&in->key);
	buf_free(&in->scratch);
}

static int
fail(JsonIn *in, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static int
fail(JsonIn *in, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (in->err[0])
		return -1;				/* the first error is the one that counts */
	va_start(ap, fmt);
	n = vsnprintf(in->err, sizeof(in->err), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t) n < sizeof(in->err))
		snprintf(in->err + n, sizeof(in->err) - (size_t) n, " at offset %zu", in->i);
	return -1;
}

static void
skip_ws(JsonIn *in)
{
	while (in->i < in->n && (in->s[in->i] == ' ' || in->s[in->i] == '\t' ||
							 in->s[in->i] == '\n' || in->s[in->i] == '\r'))
		in->i++;
}

JsonKind
jin_peek(JsonIn *in)
{
	skip_ws(in);
	if (in->i >= in->n)
		return JK_NONE;
	switch (in->s[in->i])
	{
		case '{':
			return JK_OBJECT;
		case '[':
			return JK_ARRAY;
		case '"':
			return JK_STRING;
		case 't':
		case 'f':
			return JK_BOOL;
		case 'n':
			return JK_NULL;
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			return JK_NUMBER;
		default:
			return JK_NONE;
	}
}

/* ---- strings -------------------------------------------------------------------- */

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
read_hex4(JsonIn *in, unsigned *out)
{
	unsigned	v = 0;

	if (in->i + 4 > in->n)
		return fail(in, "truncated \\u escape");
	for (int k = 0; k < 4; k++)
	{
		int			h = hexval((unsigned char) in->s[in->i++]);

		if (h < 0)
			return fail(in, "bad \\u escape");
		v = v << 4 | (unsigned) h;
	}
	*out = v;
	return 0;
}

static void
put_utf8(Buf *b, unsigned cp)
{
	char		u[4];
	size_t		n;

	if (cp < 0x80)
		u[0] = (char) cp, n = 1;
	else if (cp < 0x800)
	{
		u[0] = (char) (0xC0 | cp >> 6);
		u[1] = (char) (0x80 | (cp & 63));
		n = 2;
	}
	else if (cp < 0x10000)
	{
		u[0] = (char) (0xE0 | cp >> 12);
		u[1] = (char) (0x80 | ((cp >> 6) & 63));
		u[2] = (char) (0x80 | (cp & 63));
		n = 3;
	}
	else
	{
		u[0] = (char) (0xF0 | cp >> 18);
		u[1] = (char) (0x80 | ((cp >> 12) & 63));
		u[2] = (char) (0x80 | ((cp >> 6) & 63));
		u[3] = (char) (0x80 | (cp & 63));
		n = 4;
	}
	buf_putn(b, u, n);
}

/* One \-escape (in->i just past the backslash), decoded into out. */
static int
read_escape(JsonIn *in, Buf *out)
{
	unsigned	cp,
				lo;
	char		c;

	if (in->i >= in->n)
		return fail(in, "unterminated string");
	c = in->s[in->i++];
	switch (c)
	{
		case '"':
		case '\\':
		case '/':
			buf_putc(out, c);
			return 0;
		case 'b':
			buf_putc(out, '\b');
			return 0;
		case 'f':
			buf_putc(out, '\f');
			return 0;
		case 'n':
			buf_putc(out, '\n');
			return 0;
		case 'r':
			buf_putc(out, '\r');
			return 0;
		case 't':
			buf_putc(out, '\t');
			return 0;
		case 'u':
			break;
		default:
			return fail(in, "bad escape");
	}
	if (read_hex4(in, &cp) < 0)
		return -1;
	if (cp >= 0xD800 && cp <= 0xDBFF)
	{
		if (in->i + 2 > in->n || in->s[in->i] != '\\' || in->s[in->i + 1] != 'u')
			return fail(in, "lone surrogate");
		in->i += 2;
		if (read_hex4(in, &lo) < 0)
			return -1;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return fail(in, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	else if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(in, "lone surrogate");
	if (cp == 0)
		return fail(in, "\\u0000 is not allowed");
	put_utf8(out, cp);
	return 0;
}

/*
 * A string at in->i (on its opening quote), decoded into out (emptied
 * first; NULL: only checked). Runs without escapes are copied whole.
 */
static int
read_string(JsonIn *in, Buf *out)
{
	if (out)
		buf_reset(out);
	in->i++;
	while (in->i < in->n)
	{
		size_t		run = in->i;
		unsigned char c;

		while (run < in->n && (unsigned char) in->s[run] >= 0x20 && in->s[run] != '"' &&
			   in->s[run] != '\\' && (!in->utf8 || (unsigned char) in->s[run] < 0x80))
			run++;
		if (run > in->i && out)
			buf_putn(out, in->s + in->i, run - in->i);
		in->i = run;
		if (in->i >= in->n)
			break;
		c = (unsigned char) in->s[in->i];
		if (c == '"')
		{
			in->i++;
			return 0;
		}
		if (c < 0x20)
			return fail(in, "control character in string");
		if (c >= 0x80)
		{
			size_t		k = utf8_seq_len((const unsigned char *) in->s + in->i, in->n - in->i);

			if (k == 0)
				return fail(in, "text that is not UTF-8");
			if (out)
				buf_putn(out, in->s + in->i, k);
			in->i += k;
			continue;
		}
		in->i++;				/* the backslash */
		if (read_escape(in, out ? out : &in->scratch) < 0)
			return -1;
	}
	return fail(in, "unterminated string");
}

int
jin_string(JsonIn *in, Buf *out)
{
	if (jin_peek(in) != JK_STRING)
		return fail(in, "expected a string");
	return read_string(in, out);
}

/* ---- numbers, literals, any value ------------------------------------------------- */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A number at in->i: in JSON's grammar, no more. */
static int
scan_number(JsonIn *in)
{
	if (in->s[in->i] == '-')
		in->i++;
	if (in->i >= in->n || !is_digit(in->s[in->i]))
		return fail(in, "bad number");
	if (in->s[in->i] == '0' && in->i + 1 < in->n && is_digit(in->s[in->i + 1]))
		return fail(in, "leading zero in number");
	while (in->i < in->n && is_digit(in->s[in->i]))
		in->i++;
	if (in->i < in->n && in->s[in->i] == '.')
	{
		in->i++;
		if (in->i >= in->n || !is_digit(in->s[in->i]))
			return fail(in, "bad number");
		while (in->i < in->n && is_digit(in->s[in->i]))
			in->i++;
	}
	if (in->i < in->n && (in->s[in->i] == 'e' || in->s[in->i] == 'E'))
	{
		in->i++;
		if (in->i < in->n && (in->s[in->i] == '+' || in->s[in->i] == '-'))
			in->i++;
		if (in->i >= in->n || !is_digit(in->s[in->i]))
			return fail(in, "bad number");
		while (in->i < in->n && is_digit(in->s[in->i]))
			in->i++;
	}
	return 0;
}

/* A literal (true, false, null) at in->i. */
static int
scan_word(JsonIn *in, const char *word)
{
	size_t		n = strlen(word);

	if (in->n - in->i < n || memcmp(in->s + in->i, word, n) != 0)
		return fail(in, "unexpected character");
	in->i += n;
	return 0;
}

int
jin_int(JsonIn *in, int64_t *v)
{
	size_t		st;
	bool		neg;
	uint64_t	acc = 0;

	if (jin_peek(in) != JK_NUMBER)
		return fail(in, "expected an integer");
	st = in->i;
	if (scan_number(in) < 0)
		return -1;
	neg = in->s[st] == '-';
	for (size_t k = st + (neg ? 1 : 0); k < in->i; k++)
	{
		if (!is_digit(in->s[k]))
		{
			in->i = st;
			return fail(in, "expected an integer");
		}
		if (acc > (UINT64_C(9223372036854775808) - (uint64_t) (in->s[k] - '0')) / 10)
		{
			in->i = st;
			return fail(in, "an integer out of range");
		}
		acc = acc * 10 + (uint64_t) (in->s[k] - '0');
	}
	if (!neg && acc > INT64_MAX)
	{
		in->i = st;
		return fail(in, "an integer out of range");
	}
	*v = neg ? (int64_t) (0 - acc) : (int64_t) acc;
	return 0;
}

int
jin_bool(JsonIn *in, bool *v)
{
	if (jin_peek(in) != JK_BOOL)
		return fail(in, "expected true or false");
	*v = in->s[in->i] == 't';
	return scan_word(in, *v ? "true" : "false");
}

bool
jin_null(JsonIn *in)
{
	if (jin_peek(in) != JK_NULL)
		return false;
	return scan_word(in, "null") == 0;
}

/* ---- containers ------------------------------------------------------------------- */

static int
open_container(JsonIn *in, char open, const char *what)
{
	skip_ws(in);
	if (in->i >= in->n || in->s[in->i] != open)
		return fail(in, "expected %s", what);
	if (in->depth >= JSON_DEPTH_MAX)
		return fail(in, "nesting too deep");
	in->i++;
	in->depth++;
	in->first[in->depth] = true;
	return 0;
}

/* Before the next member or element: 1 if there is one, 0 (consumed) at close. */
static int
next_in(JsonIn *in, char close)
{
	skip_ws(in);
	if (in->i < in->n && in->s[in->i] == close)
	{
		in->i++;
		in->depth--;
		return 0;
	}
	if (!in->first[in->depth])
	{
		if (in->i >= in->n || in->s[in->i] != ',')
			return fail(in, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
		in->i++;
		skip_ws(in);
	}
	in->first[in->depth] = false;
	return 1;
}

int
jin_object(JsonIn *in)
{
	return open_container(in, '{', "a JSON object");
}

/* The next member's key (into in->key if decode) and its colon. */
static int
member(JsonIn *in, bool decode)
{
	int			rc = next_in(in, '}');

	if (rc <= 0)
		return rc;
	if (in->i >= in->n || in->s[in->i] != '"')
		return fail(in, "expected a key");
	if (read_string(in, decode ? &in->key : NULL) < 0)
		return -1;
	skip_ws(in);
	if (in->i >= in->n || in->s[in->i] != ':')
		return fail(in, "expected ':'");
	in->i++;
	return 1;
}

int
jin_key(JsonIn *in)
{
	int			rc = member(in, true);

	if (rc > 0 && in->key.p == NULL)
		buf_putn(&in->key, "", 0);	/* "" as a key: p is never NULL */
	return rc;
}

int
jin_array(JsonIn *in)
{
	return open_container(in, '[', "a JSON array");
}

int
jin_item(JsonIn *in)
{
	return next_in(in, ']');
}

int
jin_end(JsonIn *in)
{
	skip_ws(in);
	if (in->i != in->n)
		return fail(in, "trailing characters after the value");
	return 0;
}

/* Skip one value of any kind, nested containers whole. */
int
jin_skip(JsonIn *in)
{
	int			rc;

	switch (jin_peek(in))
	{
		case JK_STRING:
			return read_string(in, NULL);
		case JK_NUMBER:
			return scan_number(in);
		case JK_BOOL:
			return scan_word(in, in->s[in->i] == 't' ? "true" : "false");
		case JK_NULL:
			return scan_word(in, "null");
		case JK_OBJECT:
			if (jin_object(in) < 0)
				return -1;
			while ((rc = member(in, false)) > 0)
				if (jin_skip(in) < 0)
					return -1;
			return rc;
		case JK_ARRAY:
			if (jin_array(in) < 0)
				return -1;
			while ((rc = jin_item(in)) > 0)
				if (jin_skip(in) < 0)
					return -1;
			return rc;
		case JK_NONE:
			break;
	}
	return fail(in, in->i >= in->n ? "unexpected end" : "unexpected character");
}

int
jin_span(JsonIn *in, const char **p, size_t *len)
{
	size_t		st;

	skip_ws(in);
	st = in->i;
	if (jin_skip(in) < 0)
		return -1;
	*p = in->s + st;
	*len = in->i - st;
	return 0;
}

/* ---- rows --------------------------------------------------------------------------- */

/* Is the object text s[0..n) the tagged blob {"$hex": "..."}? Its bytes into out. */
static bool
tagged_blob(const char *s, size_t n, Buf *out)
{
	JsonIn		in;
	bool		yes;

	jin_init(&in, s, n, false);
	yes = jin_object(&in) == 0 && jin_key(&in) == 1 && strcmp(in.key.p, SYNCQ_BLOB_TAG) == 0 &&
		jin_string(&in, &in.scratch) == 0 && jin_key(&in) == 0 &&
		hex_decode(in.scratch.p ? in.scratch.p : "", in.scratch.len, out) == 0;
	jin_free(&in);
	return yes;
}

/*
 * The value of one field of a row, at in->i: its type (and f->b) into f,
 * its text appended to mem at *off (NUL-terminated; SIZE_MAX for none).
 */
static int
read_field(JsonIn *in, JField *f, Buf *mem, size_t *off)
{
	const char *p;
	size_t		len;

	*off = SIZE_MAX;
	switch (jin_peek(in))
	{
		case JK_STRING:
			if (read_string(in, &in->scratch) < 0)
				return -1;
			f->type = JV_STRING;
			p = in->scratch.p ? in->scratch.p : "";
			len = in->scratch.len;
			goto keep;
		case JK_NULL:
			f->type = JV_NULL;
			return scan_word(in, "null");
		case JK_BOOL:
			f->type = JV_BOOL;
			f->b = in->s[in->i] == 't';
			return scan_word(in, f->b ? "true" : "false");
		case JK_NUMBER:
			f->type = JV_NUMBER;
			break;
		case JK_OBJECT:
		case JK_ARRAY:
			f->type = JV_RAW;
			break;
		case JK_NONE:
			return fail(in, in->i >= in->n ? "unexpected end" : "unexpected character");
	}
	if (jin_span(in, &p, &len) < 0)
		return -1;
	if (f->type == JV_RAW && p[0] == '{' && tagged_blob(p, len, &in->scratch))
	{
		f->type = JV_BLOB;
		p = in->scratch.p ? in->scratch.p : "";
		len = in->scratch.len;
	}
keep:
	*off = mem->len;
	buf_putn(mem, p, len);
	buf_putc(mem, '\0');
	f->len = len;
	return 0;
}

/*
 * A flat object at in->i, into out: its keys and values go into one block
 * (out->mem), sized to fit, as the field array is; so a row of many small
 * values costs little more than its text (docs/security.md, Memory per
 * request). More than JSON_FIELDS_MAX fields is an error.
 */
int
jin_row(JsonIn *in, JObject *out)
{
	Buf			mem = {0};
	size_t	   *offs = NULL;	/* key, text offsets in mem of each field */
	int			rc;

	memset(out, 0, sizeof(*out));
	if (jin_object(in) < 0)
		return -1;
	while ((rc = jin_key(in)) > 0)
	{
		JField		f = {0};
		size_t		koff = mem.len,
					toff;

		if (out->n == JSON_FIELDS_MAX)
		{
			rc = fail(in, "an object of more than %d fields", JSON_FIELDS_MAX);
			break;
		}
		buf_putn(&mem, in->key.p, in->key.len);
		buf_putc(&mem, '\0');
		if (read_field(in, &f, &mem, &toff) < 0)
		{
			rc = -1;
			break;
		}
		if (out->n == out->cap)
		{
			out->cap = out->cap ? out->cap * 2 : 8;
			out->f = xrealloc(out->f, (size_t) out->cap * sizeof(JField));
			offs = xrealloc(offs, (size_t) out->cap * 2 * sizeof(size_t));
		}
		offs[2 * out->n] = koff;
		offs[2 * out->n + 1] = toff;
		out->f[out->n++] = f;
	}
	if (rc < 0)
	{
		free(out->f);
		memset(out, 0, sizeof(*out));
	}
	else if (out->n > 0)
	{
		out->mem = xrealloc(mem.p, mem.len);
		mem.p = NULL;
		out->f = xrealloc(out->f, (size_t) out->n * sizeof(JField));
		out->cap = out->n;
		for (int i = 0; i < out->n; i++)
		{
			out->f[i].key = out->mem + offs[2 * i];
			if (offs[2 * i + 1] != SIZE_MAX)
				out->f[i].text = out->mem + offs[2 * i + 1];
		}
	}
	buf_free(&mem);
	free(offs);
	return rc;
}

/*
 * Check that a flat object is at in->i, as jin_row would read it (the same
 * errors), without keeping anything: *nfields says how many fields it has.
 */
int
jin_row_check(JsonIn *in, int *nfields)
{
	int			rc;

	*nfields = 0;
	if (jin_object(in) < 0)
		return -1;
	while ((rc = member(in, false)) > 0)
	{
		if (*nfields == JSON_FIELDS_MAX)
			return fail(in, "an object of more than %d fields", JSON_FIELDS_MAX);
		if (jin_skip(in) < 0)
			return -1;
		(*nfields)++;
	}
	return rc;
}

int
jobj_parse(const char *s, size_t n, JObject *out, char *err, size_t errlen)
{
	JsonIn		in;
	int			rc;

	jin_init(&in, s, n, false);
	rc = jin_row(&in, out);
	if (rc == 0 && (rc = jin_end(&in)) < 0)
		jobj_free(out);
	if (rc < 0)
		snprintf(err, errlen, "%s", in.err);
	jin_free(&in);
	return rc;
}

void
jobj_free(JObject *o)
{
	for (int i = 0; i < o->n; i++)
		jfield_release(&o->f[i]);
	free(o->f);
	free(o->mem);
	memset(o, 0, sizeof(*o));
}

/* Free what f owns (not what its object's block holds). */
void
jfield_release(JField *f)
{
	if (f->own & JF_OWN_KEY)
		free(f->key);
	if (f->own & JF_OWN_TEXT)
		free(f->text);
	f->own = 0;
}

/* Give f the key key (malloc'd: f owns it now). */
void
jfield_set_key(JField *f, char *key)
{
	if (f->own & JF_OWN_KEY)
		free(f->key);
	f->key = key;
	f->own |= JF_OWN_KEY;
}

/* Give f the value text[0..len) of type type (text malloc'd and
 * NUL-terminated: f owns it now). */
void
jfield_set_text(JField *f, JvType type, char *text, size_t len)
{
	if (f->own & JF_OWN_TEXT)
		free(f->text);
	f->text = text;
	f->len = len;
	f->type = type;
	f->own |= JF_OWN_TEXT;
}

const JField *
jobj_get(const JObject *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->f[i].key, key) == 0)
			return &o->f[i];
	return NULL;
}

/*
 * Is s[0..n) exactly one JSON value (RFC 8259; blanks around it allowed)?
 * 0, or -1 with what is wrong in err.
 */
int
json_check(const char *s, size_t n, char *err, size_t errlen)
{
	JsonIn		in;
	int			rc;

	jin_init(&in, s, n, true);
	rc = jin_skip(&in) < 0 ? -1 : jin_end(&in);
	if (rc < 0)
		snprintf(err, errlen, "%s", in.err);
	jin_free(&in);
	return rc < 0 ? -1 : 0;
}

/* ---- writing ------------------------------------------------------------------------ */

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
			buf_puts(b, "{\"" SYNCQ_BLOB_TAG "\":\"");
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

/* ---- writing a document --------------------------------------------------------------- */

void
jout_init(JsonOut *o, Buf *b)
{
	o->b = b;
	o->comma = false;
}

/* Before a value or a key: the comma, if one was written before. */
static void
before(JsonOut *o)
{
	if (o->comma)
		buf_putc(o->b, ',');
	o->comma = true;
}

void
jout_object(JsonOut *o)
{
	before(o);
	buf_putc(o->b, '{');
	o->comma = false;
}

void
jout_object_end(JsonOut *o)
{
	buf_putc(o->b, '}');
	o->comma = true;
}

void
jout_array(JsonOut *o)
{
	before(o);
	buf_putc(o->b, '[');
	o->comma = false;
}

void
jout_array_end(JsonOut *o)
{
	buf_putc(o->b, ']');
	o->comma = true;
}

void
jout_key(JsonOut *o, const char *key)
{
	before(o);
	buf_json_string(o->b, key, strlen(key));
	buf_putc(o->b, ':');
	o->comma = false;
}

void
jout_string(JsonOut *o, const char *s)
{
	if (s == NULL)
		jout_null(o);
	else
		jout_stringn(o, s, strlen(s));
}

void
jout_stringn(JsonOut *o, const char *s, size_t n)
{
	before(o);
	buf_json_string(o->b, s, n);
}

void
jout_int(JsonOut *o, int64_t v)
{
	before(o);
	buf_printf(o->b, "%" PRId64, v);
}

void
jout_bool(JsonOut *o, bool v)
{
	before(o);
	buf_puts(o->b, v ? "true" : "false");
}

void
jout_null(JsonOut *o)
{
	before(o);
	buf_puts(o->b, "null");
}

void
jout_raw(JsonOut *o, const char *json, size_t n)
{
	before(o);
	buf_putn(o->b, json, n);
}

void
jout_row(JsonOut *o, const JObject *row, bool tagged)
{
	before(o);
	json_object(o->b, row, tagged);
}

void
jout_field(JsonOut *o, const JField *f)
{
	before(o);
	buf_json_value(o->b, f);
}

void
jout_kstring(JsonOut *o, const char *key, const char *s)
{
	jout_key(o, key);
	jout_string(o, s);
}

void
jout_kint(JsonOut *o, const char *key, int64_t v)
{
	jout_key(o, key);
	jout_int(o, v);
}

void
jout_kbool(JsonOut *o, const char *key, bool v)
{
	jout_key(o, key);
	jout_bool(o, v);
}
