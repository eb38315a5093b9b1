/* Device names and file names exactly as vLLM spells them, and vLLM's
 * nearest-M choice. */
#include <string.h>

#include "check.h"
#include "moetune/moetune.h"

static void name_is(const char *raw, const char *want)
{
    char out[128];
    CHECK(mt_device_vllm_name(out, sizeof out, raw) == MT_OK, "naming '%s' failed", raw);
    CHECK(strcmp(out, want) == 0, "'%s' -> '%s', want '%s'", raw, out, want);
}

/* CPU names become file names and bucket keys as they are: nothing that
 * publish refuses (letters, digits, "=,._+-[]" only) */
static void cpu_is(const char *model, const char *want)
{
    char out[128];
    CHECK(mt_device_cpu_name_of(out, sizeof out, model) == MT_OK, "naming CPU '%s' failed", model);
    CHECK(strcmp(out, want) == 0, "CPU '%s' -> '%s', want '%s'", model, out, want);
    for (const char *p = out; *p; p++)
        CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", *p), "'%c' in %s", *p, out);
}

static void parse_roundtrip(const char *file)
{
    mt_vllm_name nm;
    char why[256] = "", back[512];
    int rc = mt_vllm_name_parse(file, &nm, why, sizeof why);
    CHECK(rc == MT_OK, "parse '%s': %s", file, why);
    if (rc != MT_OK) return;
    CHECK(mt_vllm_name_format(back, sizeof back, &nm) == MT_OK, "format failed");
    CHECK(strcmp(back, file) == 0, "'%s' came back as '%s'", file, back);
}

int main(void)
{
    name_is("NVIDIA H100 80GB HBM3", "NVIDIA_H100_80GB_HBM3");
    name_is("NVIDIA A100-SXM4-80GB", "NVIDIA_A100-SXM4-80GB");
    name_is("NVIDIA H100 PCIe", "NVIDIA_H100_PCIe");
    name_is("NVIDIA H100", "NVIDIA_H100");
    name_is("NVIDIA H200", "NVIDIA_H200");
    name_is("NVIDIA H200 NVL", "NVIDIA_H200");
    name_is("NVIDIA  H200\t141GB", "NVIDIA_H200");
    name_is("NVIDIA H20", "NVIDIA_H20");            /* not an H200 */
    name_is("NVIDIA H200X", "NVIDIA_H200X");        /* the token must stand alone */
    name_is("NVIDIA RTX PRO 6000 Blackwell Server Edition", "NVIDIA_RTX_PRO_6000_Blackwell_Server_Edition");
    name_is("AMD Instinct MI300X / MI308X", "AMD_Instinct_MI300X_MI308X");
    name_is("A  B//C", "A_B_C");
    cpu_is("AMD EPYC 9554 64-Core Processor", "CPU_AMD_EPYC_9554_64-Core_Processor");
    cpu_is("Intel(R) Xeon(R) Processor", "CPU_Intel_Xeon_Processor");
    cpu_is("Intel(R) Xeon(R) CPU @ 2.20GHz", "CPU_Intel_Xeon_CPU_2.20GHz");
    cpu_is("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "CPU_Intel_Core_i7-8700K_CPU_3.70GHz");
    cpu_is("Neoverse-V2 (r0p1)", "CPU_Neoverse-V2_r0p1");
    cpu_is("@@@", "CPU_unknown");
    char small[8];
    CHECK(mt_device_cpu_name_of(small, sizeof small, "AMD EPYC 9554") == MT_EINVAL, "a short buffer for a CPU name");
    char tiny[4];
    CHECK(mt_device_vllm_name(tiny, sizeof tiny, "NVIDIA H100") == MT_EINVAL, "a short buffer must be refused");

    parse_roundtrip("E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json");
    parse_roundtrip("E=256,N=128,device_name=NVIDIA_H20,dtype=fp8_w8a8,block_shape=[128,128].json");
    parse_roundtrip("E=256,N=1024,device_name=AMD_Instinct_MI325X,block_shape=[128,128].json");
    parse_roundtrip("E=16,N=3072,device_name=NVIDIA_H100_80GB_HBM3,dtype=float8.json");
    parse_roundtrip("E=384,N=128,device_name=,dtype=int4_w4a16.json");

    mt_vllm_name nm;
    char why[256];
    CHECK(mt_vllm_name_parse("E=384,N=256,device_name=AMD_Instinct_MI350X,dtype=int4_w4a16,backend=flydsl.json", &nm,
                             why, sizeof why) == MT_EUNSUPPORTED, "flydsl must be refused");
    CHECK(strstr(why, "backend") != NULL, "the reason names the field: %s", why);
    CHECK(mt_vllm_name_parse("E=8,N=7168.json", &nm, why, sizeof why) == MT_EPARSE, "missing device_name");
    CHECK(mt_vllm_name_parse("E=x,N=1,device_name=A.json", &nm, why, sizeof why) == MT_EPARSE, "bad E");
    CHECK(mt_vllm_name_parse("E=8,N=1,device_name=A,block_shape=[128, 128].json", &nm, why, sizeof why) == MT_EPARSE,
          "SGLang's spaced block_shape is not vLLM's");
    CHECK(mt_vllm_name_parse("E=8,N=1,device_name=A.txt", &nm, why, sizeof why) == MT_EPARSE, "not .json");

    /* block_shape with a zero element is left out, as vLLM does */
    mt_vllm_name z = {.E = 8, .N = 64, .device = "X", .dtype = "fp8_w8a8", .block_n = 0, .block_k = 128};
    char out[256];
    mt_vllm_name_format(out, sizeof out, &z);
    CHECK(strcmp(out, "E=8,N=64,device_name=X,dtype=fp8_w8a8.json") == 0, "got %s", out);

    int64_t keys[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 1536, 2048, 3072, 4096};
    CHECK(mt_nearest_m(keys, 18, 3) == 1, "M=3 ties between 2 and 4: the first key wins");
    CHECK(mt_nearest_m(keys, 18, 5) == 2, "M=5 -> 4");
    CHECK(mt_nearest_m(keys, 18, 100000) == 17, "beyond the last key");
    CHECK(mt_nearest_m(keys, 18, 1280) == 13, "1280 ties 1024 and 1536: 1024");
    int64_t unsorted[] = {64, 16, 32};
    CHECK(mt_nearest_m(unsorted, 3, 48) == 0, "ties go to file order, not to the smaller key");
    CHECK(mt_nearest_m(keys, 0, 3) == -1, "no keys");

    int d;
    CHECK(mt_dtype_parse("bf16", &d) == MT_OK && d == MT_DTYPE_BF16, "bf16");
    CHECK(mt_dtype_parse("int3", &d) == MT_EPARSE, "unknown dtype");
    for (int s = 0; s >= -16; s--) CHECK(strcmp(mt_status_str(s), "unknown status") != 0, "status %d has no text", s);
    return check_report("test_naming");
}
