/* Python's json.dumps(indent=4) layout, Hugging Face config.json reading,
 * the tensor/expert-parallel arithmetic and batch-size lists. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "moetune/moetune.h"
#include "problem.h"
#include "vllm.h"

static void py_is(const char *json, const char *want)
{
    cJSON *j = cJSON_Parse(json);
    mt_buf b = {0};
    mt_json_python(&b, j, 0);
    CHECK(b.data && strcmp(b.data, want) == 0, "%s -> [%s], want [%s]", json, b.data ? b.data : "", want);
    mt_buf_free(&b);
    cJSON_Delete(j);
}

static char tmpdir[128];

static const char *write_tmp(const char *name, const char *text)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void model_is(const char *text, int64_t E, int64_t H, int64_t I, int64_t k, int renorm)
{
    mt_model_shape m;
    char err[512] = "";
    const char *p = write_tmp("config.json", text);
    int rc = mt_model_config_read(p, &m, err, sizeof err);
    CHECK(rc == MT_OK, "config %s: %s", text, err);
    if (rc) return;
    CHECK(m.experts == E && m.hidden == H && m.intermediate == I && m.topk == k && m.renormalize == renorm,
          "%s -> E=%lld H=%lld I=%lld k=%lld renorm=%d", text, (long long)m.experts, (long long)m.hidden,
          (long long)m.intermediate, (long long)m.topk, m.renormalize);
}

static void model_fails(const char *text, const char *needle)
{
    mt_model_shape m;
    char err[512] = "";
    const char *p = write_tmp("bad.json", text);
    CHECK(mt_model_config_read(p, &m, err, sizeof err) == MT_EPARSE, "should fail: %s", text);
    CHECK(strstr(err, needle) != NULL && strstr(err, "bad.json") != NULL, "message '%s' lacks '%s' or the file", err,
          needle);
}

/* Quantised checkpoints: what each model config's quantization_config says
 * the engine runs the experts in, named as vLLM names it (config files
 * written from the models' published config.json) */
static void test_quant(void)
{
    static const struct { const char *file, *dtype; int64_t bn, bk, group, E, N; int zp; const char *about; } cases[] = {
        {"deepseek-v3-fp8.json", "fp8_w8a8", 128, 128, 0, 256, 2048, 0, "128x128 block scales"},
        {"qwen3-30b-a3b-fp8.json", "fp8_w8a8", 128, 128, 0, 128, 768, 0, "e4m3"},
        {"mixtral-fp8-dynamic.json", "fp8_w8a8", 0, 0, 0, 8, 14336, 0, "8-bit float (channel), activations 8-bit float"},
        {"mixtral-fp8-static.json", "fp8_w8a8", 0, 0, 0, 8, 14336, 0, "fp8 per tensor, static activation scales"},
        {"qwen3-30b-a3b-w4a16.json", "int4_w4a16", 0, 0, 128, 128, 768, 0, "activations unquantised"},
        {"mixtral-awq.json", "int4_w4a16", 0, 0, 128, 8, 14336, 1, "awq, 4-bit weights in groups of 128 with zero points"},
        {"gpt-oss-20b-mxfp4.json", "mxfp4", 0, 0, 0, 32, 2880, 0, "mxfp4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512], err[512] = "";
        mt_model_shape m;
        snprintf(path, sizeof path, "%s/model-configs/%s", MT_FIXTURES, cases[i].file);
        CHECK(mt_model_config_read(path, &m, err, sizeof err) == MT_OK, "%s: %s", cases[i].file, err);
        CHECK(!strcmp(m.quant.dtype, cases[i].dtype) && m.quant.block_n == cases[i].bn && m.quant.block_k == cases[i].bk &&
                  m.quant.group_size == cases[i].group,
              "%s: %s [%lld,%lld] g%lld", cases[i].file, m.quant.dtype, (long long)m.quant.block_n,
              (long long)m.quant.block_k, (long long)m.quant.group_size);
        CHECK(strstr(m.quant.about, cases[i].about) != NULL, "%s: '%s' lacks '%s'", cases[i].file, m.quant.about,
              cases[i].about);
        CHECK(m.quant.zero_point == cases[i].zp, "%s: zero points %d", cases[i].file, m.quant.zero_point);
        CHECK(m.experts == cases[i].E && m.intermediate == cases[i].N, "%s: the shape", cases[i].file);
    }
    /* zero points as vLLM's moe_wna16 reads them: GPTQ's where sym is
     * false, AWQ's unless zero_point is false; compressed-tensors' where
     * the int4 weights are not symmetric */
    static const struct { const char *qc; int zp; } zps[] = {
        {"{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":128,\"sym\":true,\"desc_act\":false}", 0},
        {"{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":128,\"sym\":false,\"desc_act\":false}", 1},
        {"{\"quant_method\":\"gptq\",\"bits\":8,\"group_size\":128,\"sym\":false}", 0},
        {"{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":64,\"zero_point\":false}", 0},
        {"{\"quant_method\":\"compressed-tensors\",\"config_groups\":{\"g\":{\"weights\":{\"num_bits\":4,"
         "\"type\":\"int\",\"strategy\":\"group\",\"group_size\":128,\"symmetric\":false}}}}",
         1},
    };
    for (size_t i = 0; i < sizeof zps / sizeof zps[0]; i++) {
        char text[512], err[256] = "";
        mt_model_shape z;
        snprintf(text, sizeof text,
                 "{\"num_local_experts\":8,\"hidden_size\":64,\"intermediate_size\":64,\"num_experts_per_tok\":2,"
                 "\"quantization_config\":%s}",
                 zps[i].qc);
        const char *zpath = write_tmp("zp.json", text);
        CHECK(mt_model_config_read(zpath, &z, err, sizeof err) == MT_OK, "%s: %s", zps[i].qc, err);
        CHECK(z.quant.zero_point == zps[i].zp && (strstr(z.quant.about, "zero points") != NULL ||
                                                  strstr(z.quant.about, "asymmetric") != NULL) == zps[i].zp,
              "%s: zero points %d, '%s'", zps[i].qc, z.quant.zero_point, z.quant.about);
    }
    /* a config with no quantization_config: nothing */
    mt_model_shape m;
    char err[256];
    const char *p = write_tmp("plain.json", "{\"num_local_experts\":8,\"hidden_size\":64,\"intermediate_size\":64,"
                                            "\"num_experts_per_tok\":2}");
    CHECK(mt_model_config_read(p, &m, err, sizeof err) == MT_OK && !m.quant.dtype[0], "unquantised: '%s'", m.quant.dtype);
}

/* Attention config files: names both ways, the layout, the nearest keys */
static void test_attn_files(const char *dir)
{
    mt_attn_name nm = {32, 8, 128, 16, "NVIDIA_H100_80GB_HBM3", "bf16"}, back;
    char name[256], why[256], path[512];
    CHECK(mt_attn_name_format(name, sizeof name, &nm) == MT_OK &&
              !strcmp(name, "attn_decode,H=32,H_kv=8,D=128,page=16,device_name=NVIDIA_H100_80GB_HBM3,dtype=bf16.json"),
          "%s", name);
    CHECK(mt_attn_name_parse(name, &back, why, sizeof why) == MT_OK && back.num_heads == 32 && back.num_kv_heads == 8 &&
              back.head_dim == 128 && back.page_size == 16 && !strcmp(back.device, nm.device) && !strcmp(back.dtype, "bf16"),
          "round trip: %s", why);
    const char *bad[] = {"E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json",
                         "attn_decode,H=32,H_kv=6,D=128,page=16,device_name=X,dtype=bf16.json",
                         "attn_decode,H=32,H_kv=8,D=0,page=16,device_name=X,dtype=bf16.json",
                         "attn_decode,H=32,H_kv=8,D=128,page=16,device_name=X.json",
                         "attn_decode,H=32,H_kv=8,D=128,page=16,device_name=X,dtype=bf16.txt"};
    for (int i = 0; i < 5; i++) CHECK(mt_attn_name_parse(bad[i], &back, why, sizeof why) == MT_EPARSE, "accepted %s", bad[i]);
    /* written in any order, keyed in increasing order */
    mt_attn_entry e[] = {{8, 2048, "{\"partition\":512,\"num_warps\":4}"}, {1, 4096, "{\"partition\":1024,\"num_warps\":8}"},
                         {1, 512, "{\"partition\":128,\"num_warps\":4}"}, {8, 256, "{\"partition\":64,\"num_warps\":2}"}};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(mt_attn_file_write(path, e, 4, why, sizeof why) == MT_OK, "write: %s", why);
    FILE *f = fopen(path, "r");
    char text[2048] = "";
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[len] = 0;
    const char *want = "{\n    \"1\": {\n        \"512\": {\n            \"partition\": 128,\n            \"num_warps\": 4\n"
                       "        },\n        \"4096\": {\n            \"partition\": 1024,\n            \"num_warps\": 8\n"
                       "        }\n    },\n    \"8\": {\n        \"256\": {\n            \"partition\": 64,\n"
                       "            \"num_warps\": 2\n        },\n        \"2048\": {\n            \"partition\": 512,\n"
                       "            \"num_warps\": 4\n        }\n    }\n}\n";
    CHECK(!strcmp(text, want), "layout:\n%s", text);
    char params[256];
    int64_t bk = 0, ck = 0;
    /* batch 3 is nearest 1 (|3-1| < |3-8|), context 3000 nearest 4096 */
    CHECK(mt_attn_config_pick(text, 3, 3000, params, sizeof params, &bk, &ck, why, sizeof why) == MT_OK && bk == 1 &&
              ck == 4096 && !strcmp(params, "{\"partition\":1024,\"num_warps\":8}"),
          "pick 3/3000: %lld/%lld %s", (long long)bk, (long long)ck, params);
    /* ties go to the earlier key, as vLLM's min() */
    CHECK(mt_attn_config_pick(text, 100, 1152, params, sizeof params, &bk, &ck, why, sizeof why) == MT_OK && bk == 8 &&
              ck == 256, "pick 100/1152: %lld/%lld", (long long)bk, (long long)ck);
    CHECK(mt_attn_config_pick("{\"1\":{\"x\":1}}", 1, 1, params, sizeof params, NULL, NULL, why, sizeof why) == MT_EPARSE,
          "a context key that is not a number");
    CHECK(mt_attn_config_pick("[1]", 1, 1, params, sizeof params, NULL, NULL, why, sizeof why) == MT_EPARSE, "not an object");
    mt_attn_entry dup[] = {{1, 512, "{}"}, {1, 512, "{}"}};
    CHECK(mt_attn_file_write(path, dup, 2, why, sizeof why) == MT_EINVAL && strstr(why, "given twice"), "%s", why);
    unlink(path);
}

int main(void)
{
    py_is("{}", "{}");
    py_is("{\"a\":{}}", "{\n    \"a\": {}\n}");
    py_is("{\"1\":{\"BLOCK_SIZE_M\":16,\"num_warps\":4}}",
          "{\n    \"1\": {\n        \"BLOCK_SIZE_M\": 16,\n        \"num_warps\": 4\n    }\n}");
    py_is("{\"v\":\"3.6.0\",\"t\":true,\"f\":false,\"n\":null,\"l\":[1,2]}",
          "{\n    \"v\": \"3.6.0\",\n    \"t\": true,\n    \"f\": false,\n    \"n\": null,\n    \"l\": [\n        1,\n        2\n    ]\n}");
    py_is("{\"s\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\"}", "{\n    \"s\": \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\"\n}");
    py_is("{\"x\":0.5,\"y\":-3,\"z\":1e-07}", "{\n    \"x\": 0.5,\n    \"y\": -3,\n    \"z\": 1e-07\n}");

    snprintf(tmpdir, sizeof tmpdir, "/tmp/mt_test_formats.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_attn_files(tmpdir);
    /* each family's own key names */
    model_is("{\"model_type\":\"mixtral\",\"num_local_experts\":8,\"hidden_size\":4096,\"intermediate_size\":14336,"
             "\"num_experts_per_tok\":2}", 8, 4096, 14336, 2, 1);
    model_is("{\"model_type\":\"deepseek_v3\",\"n_routed_experts\":256,\"hidden_size\":7168,\"intermediate_size\":18432,"
             "\"moe_intermediate_size\":2048,\"num_experts_per_tok\":8,\"norm_topk_prob\":true}", 256, 7168, 2048, 8, 1);
    model_is("{\"model_type\":\"qwen3_moe\",\"num_experts\":128,\"hidden_size\":2048,\"intermediate_size\":6144,"
             "\"moe_intermediate_size\":768,\"num_experts_per_tok\":8,\"norm_topk_prob\":true}", 128, 2048, 768, 8, 1);
    model_is("{\"model_type\":\"gpt_oss\",\"num_local_experts\":128,\"hidden_size\":2880,\"intermediate_size\":2880,"
             "\"experts_per_token\":4}", 128, 2880, 2880, 4, 1);
    model_is("{\"model_type\":\"olmoe\",\"num_experts\":64,\"hidden_size\":2048,\"intermediate_size\":1024,"
             "\"num_experts_per_tok\":8,\"norm_topk_prob\":false}", 64, 2048, 1024, 8, 0);
    model_is("{\"model_type\":\"qwen3_vl_moe\",\"text_config\":{\"num_experts\":128,\"hidden_size\":2048,"
             "\"moe_intermediate_size\":768,\"num_experts_per_tok\":8}}", 128, 2048, 768, 8, 1);
    model_fails("{\"hidden_size\":4096,\"intermediate_size\":14336,\"num_experts_per_tok\":2}", "expert count");
    model_fails("{\"num_local_experts\":8,\"hidden_size\":4096,\"intermediate_size\":14336}", "top-k");
    model_fails("{\"num_local_experts\":8,\"hidden_size\":\"big\",\"intermediate_size\":1,\"num_experts_per_tok\":2}",
                "hidden_size");
    model_fails("{\"num_local_experts\":8,", "malformed JSON");
    model_fails("[1,2]", "not an object");
    model_fails("{\"num_local_experts\":2,\"hidden_size\":8,\"intermediate_size\":8,\"num_experts_per_tok\":4}", "exceeds");

    test_quant();
    mt_model_shape mx = {.name = "m", .experts = 8, .hidden = 4096, .intermediate = 14336, .topk = 2, .renormalize = 1};
    int64_t E, N;
    char err[256];
    CHECK(mt_shape_shard(&mx, 2, 1, &E, &N, err, sizeof err) == MT_OK && E == 8 && N == 7168, "tp2: E=%lld N=%lld",
          (long long)E, (long long)N);
    mt_model_shape ds = {.name = "d", .experts = 256, .hidden = 7168, .intermediate = 2048, .topk = 8, .renormalize = 1};
    CHECK(mt_shape_shard(&ds, 8, 1, &E, &N, err, sizeof err) == MT_OK && E == 256 && N == 256, "deepseek tp8");
    CHECK(mt_shape_shard(&ds, 1, 8, &E, &N, err, sizeof err) == MT_OK && E == 32 && N == 2048, "deepseek ep8");
    CHECK(mt_shape_shard(&mx, 3, 1, &E, &N, err, sizeof err) == MT_EINVAL && strstr(err, "--tp 3"), "14336 %% 3: %s", err);
    CHECK(mt_shape_shard(&mx, 1, 3, &E, &N, err, sizeof err) == MT_EINVAL, "8 experts %% ep 3");
    CHECK(mt_shape_shard(&mx, 2, 2, &E, &N, err, sizeof err) == MT_EINVAL, "tp with ep");
    mt_model_shape bad = {.name = "b", .experts = 4, .hidden = 64, .intermediate = 64, .topk = 8, .renormalize = 1};
    CHECK(mt_shape_shard(&bad, 1, 1, &E, &N, err, sizeof err) == MT_EINVAL && strstr(err, "top-k"), "top-k > E");

    int64_t *ms;
    int n;
    CHECK(mt_batch_sizes_parse("64,1,8", &ms, &n, err, sizeof err) == MT_OK && n == 3 && ms[0] == 1 && ms[2] == 64,
          "sorted batch sizes");
    free(ms);
    CHECK(mt_batch_sizes_parse("1,,8", &ms, &n, err, sizeof err) == MT_EPARSE, "empty item");
    CHECK(mt_batch_sizes_parse("1,8,8", &ms, &n, err, sizeof err) == MT_EPARSE, "duplicate");
    CHECK(mt_batch_sizes_parse("0", &ms, &n, err, sizeof err) == MT_EPARSE, "zero");
    CHECK(mt_batch_sizes_parse("4x", &ms, &n, err, sizeof err) == MT_EPARSE, "junk");

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_report("test_formats");
}
