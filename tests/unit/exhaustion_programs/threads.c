/* Creates threads until pthread_create fails, and says so the way C programs do. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *idle(void *arg) { pause(); return arg; }

int main(void) {
  for (int i = 0; i < 200; i++) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, idle, NULL);
    if (rc) { fprintf(stderr, "pthread_create failed: %s\n", strerror(rc)); return 1; }
  }
  return 0;
}
