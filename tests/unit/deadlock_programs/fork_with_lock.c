/* The classic fork-while-another-thread-holds-a-lock hang: a thread takes the mutex and
   keeps it; the main thread forks; the child, with one thread, waits for a mutex whose
   owner does not exist in it (a private futex wait with no timeout). */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t never_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    pthread_mutex_lock(&never_lock);
    pthread_cond_wait(&never, &never_lock);  /* keeps the lock: an untimed private wait */
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    usleep(100000);
    pid_t child = fork();
    if (child == 0) {
        pthread_mutex_lock(&lock);
        puts("never");
        return 0;
    }
    int status;
    waitpid(child, &status, 0);  /* the parent waits for it: stuck with it */
    return 0;
}
