/* Asks OpenMP for a team of 200 threads: libgomp says when it cannot create them. */
#include <omp.h>
#include <stdio.h>

int main(void) {
  int n = 0;
#pragma omp parallel num_threads(200)
  {
#pragma omp atomic
    n++;
  }
  printf("%d\n", n);
  return 0;
}
