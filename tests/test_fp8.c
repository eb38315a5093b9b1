/* fp8 e4m3 conversion and the scaled quantisations (common/fp8.c): every
 * code, every tie between neighbours, saturation, and the scale layouts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fp8.h"

static void codes(void)
{
    int finite = 0;
    for (int c = 0; c < 256; c++) {
        float v = mt_e4m3_to_f32((uint8_t)c);
        if ((c & 0x7f) == 0x7f) {
            CHECK(isnan(v), "code 0x%02x is NaN", c);
            continue;
        }
        finite++;
        CHECK(mt_f32_to_e4m3(v) == c, "code 0x%02x (%g) comes back as 0x%02x", c, (double)v, mt_f32_to_e4m3(v));
    }
    CHECK(finite == 254, "254 finite codes, %d", finite);
    CHECK(mt_e4m3_to_f32(0x7e) == 448.0f && mt_e4m3_to_f32(0x01) == ldexpf(1, -9) && mt_e4m3_to_f32(0x08) == ldexpf(1, -6),
          "448, the smallest subnormal and the smallest normal");
    CHECK(mt_f32_to_e4m3(NAN) == 0x7f, "NaN");
}

/* between neighbours a < b: the nearest, and at the midpoint the even code */
static void rounding(void)
{
    for (int c = 0; c < 0x7e; c++) {
        float a = mt_e4m3_to_f32((uint8_t)c), b = mt_e4m3_to_f32((uint8_t)(c + 1)), mid = (a + b) / 2;
        int even = c % 2 == 0 ? c : c + 1;
        CHECK(mt_f32_to_e4m3(mid) == even, "the midpoint of 0x%02x and 0x%02x goes to 0x%02x, not 0x%02x", c, c + 1,
              even, mt_f32_to_e4m3(mid));
        CHECK(mt_f32_to_e4m3(nextafterf(mid, 0)) == c && mt_f32_to_e4m3(nextafterf(mid, 1000)) == c + 1,
              "either side of the midpoint of 0x%02x and 0x%02x", c, c + 1);
        CHECK(mt_f32_to_e4m3(-mid) == (even | 0x80), "negative midpoint of 0x%02x", c);
    }
    CHECK(mt_f32_to_e4m3(449.0f) == 0x7e && mt_f32_to_e4m3(1e30f) == 0x7e && mt_f32_to_e4m3(-1e30f) == 0xfe &&
              mt_f32_to_e4m3(INFINITY) == 0x7e,
          "saturation at 448");
    CHECK(mt_f32_to_e4m3(ldexpf(1, -11)) == 0 && mt_f32_to_e4m3(-0.0f) == 0x80, "underflow and -0");
}

static void quantisers(void)
{
    /* per tensor: the largest magnitude lands on 448, every value within
     * half a step of the grid times the scale */
    float x[64];
    uint8_t q[64];
    for (int i = 0; i < 64; i++) x[i] = sinf((float)i * 0.37f) * 3.0f;
    x[17] = -9.0f;
    float s;
    mt_fp8_quant_tensor(x, 64, q, &s);
    CHECK(s == 9.0f / 448.0f, "per-tensor scale %g", (double)s);
    CHECK((q[17] & 0x7f) == 0x7e, "the largest value on 448");
    for (int i = 0; i < 64; i++) {
        float d = mt_e4m3_to_f32(q[i]) * s;
        CHECK(fabsf(d - x[i]) <= fabsf(x[i]) * 0.0625f + s * ldexpf(1, -9), "value %d: %g for %g", i, (double)d,
              (double)x[i]);
    }
    /* groups of 4 over 10 columns: 3 per row, the last of 2 columns */
    float y[2 * 10], gs[2 * 3];
    uint8_t gq[2 * 10];
    for (int i = 0; i < 20; i++) y[i] = (float)(i + 1) * (i % 3 ? 1.0f : -1.0f);
    mt_fp8_quant_groups(y, 2, 10, 4, gq, gs);
    for (int r = 0; r < 2; r++)
        for (int g = 0; g < 3; g++) {
            int c1 = g * 4 + 4 < 10 ? g * 4 + 4 : 10;
            float amax = fabsf(y[r * 10 + c1 - 1]); /* |values| grow along the row */
            CHECK(gs[r * 3 + g] == amax / 448.0f, "group scale row %d group %d: %g", r, g, (double)gs[r * 3 + g]);
            CHECK((gq[r * 10 + c1 - 1] & 0x7f) == 0x7e, "the group's largest value on 448");
        }
    /* blocks of 2 x 3 over 3 x 4: 2 x 2 scales, edge blocks partial */
    float w[12], bs[4];
    uint8_t bq[12];
    for (int i = 0; i < 12; i++) w[i] = (float)(i % 5) - 2.0f + (float)i * 0.1f;
    mt_fp8_quant_blocks(w, 3, 4, 2, 3, bq, bs);
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 2; k++) {
            float amax = 0;
            for (int r = b * 2; r < 3 && r < b * 2 + 2; r++)
                for (int c = k * 3; c < 4 && c < k * 3 + 3; c++) amax = fmaxf(amax, fabsf(w[r * 4 + c]));
            CHECK(bs[b * 2 + k] == amax / 448.0f, "block (%d, %d) scale %g, want %g", b, k, (double)bs[b * 2 + k],
                  (double)(amax / 448.0f));
        }
    /* an all-zero group keeps a positive scale and zero codes */
    float z[4] = {0};
    uint8_t zq[4];
    float zs;
    mt_fp8_quant_groups(z, 1, 4, 128, zq, &zs);
    CHECK(zs > 0 && zq[0] == 0 && zq[3] == 0, "zeros");
}

int main(void)
{
    codes();
    rounding();
    quantisers();
    return check_report("test_fp8");
}
