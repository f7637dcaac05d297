/*
 * daemon.h — syncqd running on (daemon.c).
 */
#ifndef SYNCQD_DAEMON_H
#define SYNCQD_DAEMON_H

#include "syncqd.h"

typedef struct
{
	const char *online;			/* the hub's conninfo */
	double		interval;		/* seconds between syncs of batched changes */
	const char *control;		/* HOST:PORT of the control API, or NULL */
	const char *log_file;		/* reopened on SIGHUP, or NULL */
} DaemonOptions;

/* Set by SIGHUP: reopen the log file. */
extern volatile sig_atomic_t reopen_requested;

void		signals_install(void);
int			daemon_run(Client *cl, const DaemonOptions *o);

#endif							/* SYNCQD_DAEMON_H */
