/*
 * daemon.h — syncqd running on (daemon.c), and the syncqd command that
 * starts it or one sync (command.c).
 */
#ifndef SYNCQD_DAEMON_H
#define SYNCQD_DAEMON_H

#include "client/client.h"

typedef struct
{
	const char *online;			/* the hub's conninfo */
	double		interval;		/* seconds between syncs of batched changes */
	const char *control;		/* HOST:PORT of the control API, or NULL */
	const char *const *origins; /* the app's origins it answers (--allow-origin) */
	int			norigins;
	const char *log_file;		/* reopened on SIGHUP, or NULL */
} DaemonOptions;

/* daemon.c */
int			daemon_run(Client *cl, const DaemonOptions *o);

/* command.c: `syncqd --sqlite FILE ...`; returns the exit status */
int			syncqd_main(int argc, char **argv);

#endif							/* SYNCQD_DAEMON_H */
