/*
 * syncq.h
 *	  Declarations shared by the C files of the syncq PostgreSQL extension.
 *
 * The extension is split by subsystem: timefuncs.c holds the timezone
 * vocabulary shared with the SQLite extension (eastern_date() and its
 * siblings); the capture subsystem holds sync_track() and the C trigger.
 */
#ifndef SYNCQ_H
#define SYNCQ_H

#include "postgres.h"

/* The business zone of the Eastern helpers. */
#define SYNCQ_EASTERN_ZONE "America/New_York"

#endif							/* SYNCQ_H */
