#include "moetune/moetune.h"

int mt_nearest_m(const int64_t *keys, int n, int64_t m)
{
    int best = -1;
    int64_t best_d = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = keys[i] > m ? keys[i] - m : m - keys[i];
        /* strict '<' keeps the earliest key on a tie, as Python's min() does */
        if (best < 0 || d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return best;
}
