/*
 * encode.c — base64 and hex, both ways (encode.h).
 *
 *   buf_base64      append bytes as base64 (padded)
 *   base64_decode   base64 (padding optional) to bytes
 *   buf_hex         append bytes as lowercase hex
 *   hex_decode      an even run of hex digits (either case) to bytes
 *   utf8_seq_len    the length of one UTF-8 sequence, 0 if it is none
 */
#include "base/base.h"
#include "base/encode.h"

static const char b64chars[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
buf_base64(Buf *b, const unsigned char *p, size_t n)
{
	buf_reserve(b, (n + 2) / 3 * 4);
	for (size_t i = 0; i < n; i += 3)
	{
		unsigned	v = (unsigned) p[i] << 16;

		if (i + 1 < n)
			v |= (unsigned) p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_putc(b, b64chars[(v >> 18) & 63]);
		buf_putc(b, b64chars[(v >> 12) & 63]);
		buf_putc(b, i + 1 < n ? b64chars[(v >> 6) & 63] : '=');
		buf_putc(b, i + 2 < n ? b64chars[v & 63] : '=');
	}
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode base64 (padding optional) into out; -1 if s is not base64. */
int
base64_decode(const char *s, size_t n, Buf *out)
{
	unsigned	acc = 0;
	int			bits = 0;
	size_t		i;

	buf_reset(out);
	for (i = 0; i < n && s[i] != '='; i++)
	{
		int			v = b64val((unsigned char) s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			buf_putc(out, (char) ((acc >> bits) & 0xFF));
		}
	}
	for (; i < n; i++)
		if (s[i] != '=')
			return -1;
	return 0;
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

/* Decode hex digits into out; -1 if s is not an even run of hex digits. */
int
hex_decode(const char *s, size_t n, Buf *out)
{
	buf_reset(out);
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2)
	{
		int			hi = hexval((unsigned char) s[i]),
					lo = hexval((unsigned char) s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		buf_putc(out, (char) (hi << 4 | lo));
	}
	return 0;
}

void
buf_hex(Buf *b, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	buf_reserve(b, 2 * n);
	for (size_t i = 0; i < n; i++)
	{
		buf_putc(b, hex[p[i] >> 4]);
		buf_putc(b, hex[p[i] & 15]);
	}
}

size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t		len;
	unsigned	cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}
