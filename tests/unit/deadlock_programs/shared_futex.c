/* A process-shared semaphore in shared memory: the child waits on it (a shared futex,
   no timeout); the parent posts it after 2 s. Another process can wake it: never a
   proof. */
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    sem_t *sem = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sem_init(sem, 1, 0);
    pid_t child = fork();
    if (child == 0) {
        sem_wait(sem);
        return 0;
    }
    sleep(2);
    sem_post(sem);
    int status;
    waitpid(child, &status, 0);
    return WEXITSTATUS(status);
}
