/* lp_compare A B VOCAB: two files of log-probabilities (float32
 * little-endian [positions, VOCAB], as `zquant eval --logprobs` writes
 * them), and prints on one line as JSON the mean KL(P_a || P_b) in nats
 * per position, the largest |a - b| of a log-probability whose
 * probability in A is at least 1e-3, and the fraction of positions whose
 * argmax agrees. Exit 2 on unreadable or mismatched files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    rewind(f);
    float *p = malloc((size_t)bytes + 4);
    if (p && fread(p, 1, (size_t)bytes, f) != (size_t)bytes) free(p), p = NULL;
    fclose(f);
    *n = bytes / 4;
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: lp_compare A B VOCAB\n");
        return 2;
    }
    long na, nb, V = atol(argv[3]);
    float *a = slurp(argv[1], &na), *b = slurp(argv[2], &nb);
    if (!a || !b || na != nb || V <= 0 || na % V) {
        fprintf(stderr, "lp_compare: unreadable or mismatched files\n");
        return 2;
    }
    long positions = na / V, agree = 0;
    double kl = 0, worst = 0;
    for (long p = 0; p < positions; p++) {
        const float *x = a + p * V, *y = b + p * V;
        long ax = 0, ay = 0;
        for (long i = 0; i < V; i++) {
            double pa = exp((double)x[i]);
            kl += pa * ((double)x[i] - (double)y[i]);
            if (pa >= 1e-3 && fabs((double)x[i] - (double)y[i]) > worst) worst = fabs((double)x[i] - (double)y[i]);
            if (x[i] > x[ax]) ax = i;
            if (y[i] > y[ay]) ay = i;
        }
        agree += ax == ay;
    }
    printf("{\"positions\":%ld,\"kl\":%.9g,\"max_abs\":%.9g,\"top1\":%.6f}\n", positions, kl / (double)positions, worst,
           (double)agree / (double)positions);
    free(a);
    free(b);
    return 0;
}
