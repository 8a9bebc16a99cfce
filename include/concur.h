/*
 * concur.h: the whole of libconcur. Each module has its own header, in the order
 * of DESIGN.md's layers; include this one.
 */
#ifndef CONCUR_H
#define CONCUR_H

#include "concur/base.h"       /* errors, time and deadlines, allocation hook */
#include "concur/thread.h"     /* threads, thread-local values */
#include "concur/sync.h"       /* lock, rlock, condition, semaphore, event, barrier */
#include "concur/queue.h"      /* FIFO, LIFO and priority queues */
#include "concur/future.h"     /* futures, wait on many, as-completed */
#include "concur/executor.h"   /* the thread pool executor */
#include "concur/loop.h"       /* event loop, tasks (green threads), fds */
#include "concur/subprocess.h" /* child processes */
#include "concur/process.h"    /* worker processes (multiprocessing.Process) */
#include "concur/shm.h"        /* shared memory segments */
#include "concur/ipc.h"        /* lock, event, semaphore, queue between processes */
#include "concur/conn.h"       /* whole-message connections (Pipe) */
#include "concur/procpool.h"   /* the process pool executor */

#endif
