/* concur/executor.h: placeholder, filled in by its module's work. */
#ifndef CONCUR_EXECUTOR_H
#define CONCUR_EXECUTOR_H
#include "base.h"
#endif
