/*
 * signals.c — what SIGTERM, SIGINT and SIGHUP do (base.h): the handlers
 * only set a flag; the loops (sync/daemon.c, http/serve.c) act on it.
 *
 *   signals_install   the handlers; SIGPIPE ignored
 */
#include "base/base.h"

#include <string.h>

volatile sig_atomic_t stop_requested = 0;
volatile sig_atomic_t reopen_requested = 0;

static void
on_stop(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static void
on_hup(int sig)
{
	(void) sig;
	reopen_requested = 1;
}

/* SIGTERM and SIGINT stop, SIGHUP reopens the log, SIGPIPE is ignored. */
void
signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

