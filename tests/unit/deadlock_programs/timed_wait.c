/* One thread in sem_timedwait on a private semaphore: a futex wait *with* a timeout.
   It wakes after 2 s and exits 0: never a proof. */
#include <semaphore.h>
#include <time.h>

int main(void) {
    sem_t sem;
    sem_init(&sem, 0, 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    sem_timedwait(&sem, &until);
    return 0;
}
