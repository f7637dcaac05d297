/*
 * encode.h — bytes as base64 and as hex, both ways (encode.c).
 *
 * base64 is how blobs cross between nodes and sit in the hub's queue;
 * hex is the SQLite queue's tagged blob ({"$hex": ...}) and bytea's
 * "\x..." text. And whether bytes are UTF-8.
 */
#ifndef SYNCQD_ENCODE_H
#define SYNCQD_ENCODE_H

#include <stddef.h>

#include "base/buf.h"

void		buf_base64(Buf *b, const unsigned char *p, size_t n);
void		buf_hex(Buf *b, const unsigned char *p, size_t n);

/* Decode into out (emptied first); -1 if s is not base64 (padding
 * optional) or not an even run of hex digits. */
int			base64_decode(const char *s, size_t n, Buf *out);
int			hex_decode(const char *s, size_t n, Buf *out);

/* The length of the UTF-8 sequence at s[0..n) (1 to 4), or 0 if the bytes
 * there are not UTF-8 (overlong, a surrogate, past U+10FFFF, cut short). */
size_t		utf8_seq_len(const unsigned char *s, size_t n);

#endif							/* SYNCQD_ENCODE_H */
