/* concur/queue.h: placeholder, filled in by its module's work. */
#ifndef CONCUR_QUEUE_H
#define CONCUR_QUEUE_H
#include "base.h"
#endif
