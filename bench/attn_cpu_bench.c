/* The CPU paged attention decode timed on one shape (bf16, pages of 16,
 * every sequence at the full context, pages in order): best of 15 runs.
 * Build it against two libmoetune.a to compare kernel versions in one run:
 *   cc -O2 -Ikernels/cpu -Iinclude bench/attn_cpu_bench.c build/libmoetune.a -lcjson -lm -lpthread -ldl
 * usage: attn_cpu_bench H HKV D B CTX PARTITION PAGES_PER_ITER THREADS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "attn.h"
#include "moe_cpu.h"
#include "moetune/moetune.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int H=atoi(argv[1]),Hkv=atoi(argv[2]),D=atoi(argv[3]),B=atoi(argv[4]),ctx=atoi(argv[5]),part=atoi(argv[6]),ppi=atoi(argv[7]),thr=atoi(argv[8]);
  mt_attn_shape s={H,Hkv,D,16,MT_DTYPE_BF16};
  int64_t per=(ctx+15)/16,pages=B*per; size_t qn=(size_t)B*H*D,kvn=(size_t)pages*16*Hkv*D;
  void*q=malloc(qn*2),*k=malloc(kvn*2),*v=malloc(kvn*2),*out=malloc(qn*2); int32_t*bt=malloc(pages*4),*lens=malloc(B*4);
  mt_rng r={1}; for(int64_t i=0;i<pages;i++)bt[i]=i; for(int i=0;i<B;i++)lens[i]=ctx;
  mt_fill_random(q,s.dtype,qn,1,&r);mt_fill_random(k,s.dtype,kvn,1,&r);mt_fill_random(v,s.dtype,kvn,1,&r);
  mt_attn_batch ab={B,per,pages,q,k,v,bt,lens,0}; mt_attn_cpu_params p={part,ppi,thr};
  void*ws=malloc(mt_attn_cpu_workspace(&s,&ab,&p)); mt_pool*pool=NULL; mt_pool_new(&pool,thr);
  double best=1e9; for(int i=0;i<15;i++){double t=now(); mt_attn_cpu_forward(pool,&s,&ab,&p,ws,out); t=now()-t; if(t<best)best=t;}
  printf("%.1f us\n",best*1e6); return 0;}
