/* A persistent thread pool, shared by the CPU kernels of every family. */
#ifndef MT_POOL_H
#define MT_POOL_H

typedef struct mt_pool mt_pool;
/* A persistent pool of `threads` threads (the caller counts as one). */
int mt_pool_new(mt_pool **out, int threads);
void mt_pool_free(mt_pool *pool);
int mt_pool_size(const mt_pool *pool);
/* Run fn(arg, thread_index) on `threads` threads (<= pool size), return
 * when all are done. */
void mt_pool_run(mt_pool *pool, int threads, void (*fn)(void *arg, int tid), void *arg);

#endif
