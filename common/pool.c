/* A persistent thread pool. Creating threads per call would cost tens of
 * microseconds and blur the timing of small problems. */
#include <pthread.h>
#include <stdlib.h>

#include "moetune/moetune.h"
#include "pool.h"

struct mt_pool {
    int n;                 /* threads including the caller */
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;     /* bumped for each job; workers wait for a change */
    int active;            /* threads taking part in the current job */
    int pending;           /* helpers still running the current job */
    int quit;
    void (*fn)(void *, int);
    void *arg;
};

struct helper { mt_pool *p; int idx; };

static void *helper_main(void *a)
{
    struct helper h = *(struct helper *)a;
    mt_pool *p = h.p;
    unsigned long seen = 0;
    free(a);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        if (h.idx >= p->active) continue;
        void (*fn)(void *, int) = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(arg, h.idx);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int mt_pool_new(mt_pool **out, int threads)
{
    mt_pool *p;
    if (!out || threads < 1) return MT_EINVAL;
    p = calloc(1, sizeof *p);
    if (!p) return MT_ENOMEM;
    p->n = threads;
    p->tids = calloc((size_t)threads, sizeof *p->tids);
    if (!p->tids) {
        free(p);
        return MT_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < threads; i++) {
        struct helper *h = malloc(sizeof *h);
        if (h) {
            h->p = p;
            h->idx = i;
        }
        if (!h || pthread_create(&p->tids[i], NULL, helper_main, h) != 0) {
            free(h);
            p->n = i; /* only threads 1..i-1 exist */
            mt_pool_free(p);
            return MT_ENOMEM;
        }
    }
    *out = p;
    return MT_OK;
}

void mt_pool_free(mt_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->tids[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
}

int mt_pool_size(const mt_pool *p)
{
    return p ? p->n : 0;
}

void mt_pool_run(mt_pool *p, int threads, void (*fn)(void *, int), void *arg)
{
    if (threads > p->n) threads = p->n;
    if (threads < 1) threads = 1;
    if (threads > 1) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->arg = arg;
        p->active = threads;
        p->pending = threads - 1;
        p->gen++;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0);
    if (threads > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
