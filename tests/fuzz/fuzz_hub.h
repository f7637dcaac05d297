/*
 * fuzz_hub.h — the hub's value encoding under the fuzzer (fuzz_hub.c),
 * called by fuzz_proto.c with every upload the request decoder accepts.
 */
#ifndef SYNCQ_FUZZ_HUB_H
#define SYNCQ_FUZZ_HUB_H

#include "model/change.h"

/* Run changes (decoded; changed in place, as the hub does) through the
 * hub's validation and encoding; abort if a run's JSON breaks its shape. */
void		fuzz_hub_upload(ChangeList *changes);

#endif							/* SYNCQ_FUZZ_HUB_H */
