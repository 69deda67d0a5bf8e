#include <stdlib.h>
int main(void) {
    enum { N = 4096 };
    long *a = malloc(N * sizeof(long));
    long s = 0;
    for (int i = 0; i < N; i++) a[i] = i;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < N; i++) s += a[i];
    free(a);
    return (int)(s & 1);
}
