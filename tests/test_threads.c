/* One runtime shared by threads that look up different MoE and attention
 * keys at once, the files read while other threads look up (built and run
 * under ThreadSanitizer in CI as well): every answer is the file's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "moetune/moetune.h"

#define NTHREADS 8
#define NKEYS 200
#define NOFILE 20 /* the last keys have no file */
#define ROUNDS 4

static char dir[256];
static mt_runtime *rt;
static int bad[NTHREADS];
static int nlog;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_log(int level, const char *msg, void *user)
{
    (void)level, (void)msg, (void)user;
    pthread_mutex_lock(&log_mu);
    nlog++;
    pthread_mutex_unlock(&log_mu);
}

static void write_file(const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* key i: attention heads 8*(i+1) over 2 KV heads, partition 16*(i+1);
 * MoE E=i+1, BLOCK_SIZE_M 16 or 32 by parity. The last NOFILE keys have no
 * file. Many keys: the runtime's tables grow while other threads read. */
static void make_files(void)
{
    for (int i = 0; i < NKEYS - NOFILE; i++) {
        char name[512], text[256];
        snprintf(name, sizeof name, "attn_decode,H=%d,H_kv=2,D=64,page=16,device_name=NVIDIA_H100_80GB_HBM3,dtype=bf16.json",
                 8 * (i + 1));
        snprintf(text, sizeof text, "{\"1\": {\"512\": {\"partition\": %d, \"num_warps\": 4}}}\n", 16 * (i + 1));
        write_file(name, text);
        snprintf(name, sizeof name, "E=%d,N=64,device_name=NVIDIA_H100_80GB_HBM3.json", i + 1);
        snprintf(text, sizeof text, "{\"1\": {\"BLOCK_SIZE_M\": %d, \"BLOCK_SIZE_N\": 64, \"BLOCK_SIZE_K\": 64, "
                                    "\"GROUP_SIZE_M\": 1, \"num_warps\": 4, \"num_stages\": 3}}\n",
                 i % 2 ? 32 : 16);
        write_file(name, text);
    }
}

static pthread_barrier_t start;

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&start);
    for (int r = 0; r < ROUNDS; r++)
        for (int j = 0; j < NKEYS; j++) {
            /* each thread walks the keys from its own offset: first loads race */
            int i = (j + t * 7) % NKEYS;
            mt_attn_key ak = {8 * (i + 1), 2, 64, 16, NULL};
            mt_attn_config ac;
            if (mt_runtime_lookup_attention(rt, &ak, 1 + r % 4, 100 + r, &ac) != MT_OK) bad[t]++;
            else if (i < NKEYS - NOFILE && (ac.source != MT_SOURCE_CONFIG_DIR || ac.partition != 16 * (i + 1) || !ac.file ||
                                       !strstr(ac.file, "attn_decode")))
                bad[t]++;
            else if (i >= NKEYS - NOFILE && ac.source != MT_SOURCE_DEFAULT)
                bad[t]++;
            mt_moe_key mk = {i + 1, 64, 0, 0, NULL, 0, 0};
            mt_moe_config mc;
            if (mt_runtime_lookup_moe(rt, &mk, 1 + r, &mc) != MT_OK) bad[t]++;
            else if (i < NKEYS - NOFILE && (mc.source != MT_SOURCE_CONFIG_DIR || mc.block_size_m != (i % 2 ? 32 : 16)))
                bad[t]++;
            else if (i >= NKEYS - NOFILE && mc.source != MT_SOURCE_DEFAULT)
                bad[t]++;
        }
    return NULL;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mt_test_threads.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    make_files();
    mt_runtime_options o = MT_RUNTIME_OPTIONS_INIT;
    o.config_dir = dir;
    o.tuned_dir = o.cache_dir = o.bundled_dir = "/nonexistent";
    o.device_name = "NVIDIA_H100_80GB_HBM3";
    o.backend = "cuda";
    o.log = on_log;
    o.log_level = MT_LOG_DEBUG;
    CHECK(mt_runtime_open(&rt, &o) == MT_OK, "open");
    pthread_t th[NTHREADS];
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < NTHREADS; t++) CHECK(bad[t] == 0, "thread %d: %d wrong answers", t, bad[t]);
    CHECK(nlog > 0, "the log callback was called from the threads");
    mt_runtime_close(rt);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report("test_threads");
}
