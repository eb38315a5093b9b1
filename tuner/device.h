/* Devices: the CPU, and GPUs found through the vendor driver libraries
 * loaded at run time, so that one binary runs with or without them. */
#ifndef MT_DEVICE_H
#define MT_DEVICE_H

#include "db.h"

enum mt_backend_kind { MT_BACKEND_CPU = 0, MT_BACKEND_CUDA = 1, MT_BACKEND_HIP = 2 };

typedef struct mt_device_spec {
    int auto_pick; /* --device auto */
    int kind;      /* mt_backend_kind */
    int index;     /* GPU ordinal */
} mt_device_spec;

#include <cjson/cJSON.h>


/* Parse auto | cpu | cuda:N | hip:N (cuda and hip mean index 0). */
int mt_device_spec_parse(const char *s, mt_device_spec *out);

/* Fill info for the CPU of this machine. The CPU's file-name spelling is
 * "CPU_" followed by the processor's model name with runs of whitespace and
 * '/' replaced by '_' (docs/devices.md). */
int mt_device_cpu_info(mt_device_info *info);

/* Number of CUDA devices through libcuda (0 with a reason in why when the
 * driver is absent or sees none), and the info of device idx. */
int mt_device_cuda_count(char *why, size_t why_len);
int mt_device_cuda_info(int idx, mt_device_info *info, char *why, size_t why_len);

/* 1 when this build can measure on the backend. */
int mt_backend_available(int kind);
const char *mt_backend_name(int kind);

/* Resolve a spec: auto picks the first GPU whose backend this build has,
 * else the CPU, and says in note why it chose as it did. */
int mt_device_resolve(const mt_device_spec *spec, mt_device_spec *out, char *note, size_t note_len);

#endif
