/*
 * buf.h — a growable byte buffer, always NUL-terminated (buf.c).
 *
 * A zeroed Buf is empty and valid; buf_free() makes it so again. Growth
 * never fails (xrealloc ends the process when memory is out).
 */
#ifndef SYNCQD_BUF_H
#define SYNCQD_BUF_H

#include <stddef.h>

typedef struct
{
	char	   *p;				/* NULL until something is put */
	size_t		len;
	size_t		cap;
} Buf;

void		buf_reserve(Buf *b, size_t extra);
void		buf_putn(Buf *b, const char *s, size_t n);
void		buf_puts(Buf *b, const char *s);
void		buf_putc(Buf *b, char c);
void		buf_printf(Buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		buf_reset(Buf *b);
void		buf_free(Buf *b);

#endif							/* SYNCQD_BUF_H */
