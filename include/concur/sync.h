/* concur/sync.h: placeholder, filled in by its module's work. */
#ifndef CONCUR_SYNC_H
#define CONCUR_SYNC_H
#include "base.h"
#endif
