/*
 * encode.h — bytes as base64 and as hex, both ways (encode.c).
 *
 * base64 is how blobs cross between nodes and sit in the hub's queue;
 * hex is the SQLite queue's tagged blob ({"$hex": ...}) and bytea's
 * "\x..." text.
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

#endif							/* SYNCQD_ENCODE_H */
