/*
 * watch.h — the SQLite side's wake-ups (watch.c).
 */
#ifndef SYNCQD_WATCH_H
#define SYNCQD_WATCH_H

#include "client/client.h"

typedef struct Watch Watch;

/* watch_read() */
#define WATCH_WAKE		1			/* the wake file was written */
#define WATCH_WRITTEN	2			/* the database or its WAL was written */

/* watch_poll() */
#define WATCH_CHANGED	4			/* another connection committed */
#define WATCH_IMMEDIATE 8			/* ... an immediate change of this node */
#define WATCH_SCHEMA	16			/* ... a schema change (capture repaired) */

Watch	   *watch_open(Client *cl, char *err, size_t errlen);
void		watch_close(Watch *w);
int			watch_fd(const Watch *w);
int			watch_read(Watch *w);
int			watch_poll(Watch *w, char *err, size_t errlen);

#endif							/* SYNCQD_WATCH_H */
