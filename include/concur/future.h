/* concur/future.h: placeholder, filled in by its module's work. */
#ifndef CONCUR_FUTURE_H
#define CONCUR_FUTURE_H
#include "base.h"
#endif
