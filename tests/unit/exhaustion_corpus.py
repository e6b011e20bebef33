"""Real thread-exhaustion messages, each beside a near-miss that must not count.

`produced` entries were printed by the runtime itself on this machine kind (Debian 12,
root, cgroup v1) inside a pids cgroup whose pids.max was too small (2026-11-30;
tests/unit/test_exhaustion.py reproduces the local ones live). `quoted` entries are the
runtime's own source text (the format string it prints), for runtimes not installed
here. Near-misses are messages of the same runtimes with EAGAIN, "thread", "fork" or
"Check failed" in them that are about something else (a non-blocking read, a lock, a
heap, a library load); their source says whether they were produced here, quoted, or
constructed in the runtime's own format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    runtime: str
    source: str  # how the message was obtained
    text: str  # what the runtime printed (several lines where it prints several)
    near_miss: str  # a message of the same runtime that must not count
    near_miss_source: str


CORPUS = (
    Entry("TensorFlow 2.21", "produced: the reference workload, tight-budget (pids.max 12)",
          "F0000 00:00:1796006750.064787   13521 env.cc:84] Check failed: ret == 0 (11 vs. 0) "
          "Thread tf_data_iterator_resource creation via pthread_create() failed.",
          "F0000 00:00:1796006750.064787   13521 tensor_shape.cc:356] Check failed: "
          "d < dims() (1 vs. 1)",
          "constructed: TF's CHECK format, a shape check (tensor_shape.cc)"),
    Entry("LLVM (TF's XLA)", "produced: DESIGN.md, the reference workload under pids.max 4..20",
          "LLVM ERROR: pthread_create failed: Resource temporarily unavailable",
          "LLVM ERROR: out of memory\nAllocation failed",
          "quoted: LLVM's report_bad_alloc_error text"),
    Entry("OpenBLAS (numpy)", "produced: python -c 'import numpy' under pids.max 1",
          "OpenBLAS blas_thread_init: pthread_create failed for thread 1 of 2: "
          "Resource temporarily unavailable\n"
          "OpenBLAS blas_thread_init: ensure that your address space and process count "
          "limits are big enough (ulimit -a)",
          "OpenBLAS Warning : Detect OpenMP Loop and this application may hang. "
          "Please rebuild the library with USE_OPENMP=1 option.",
          "quoted: OpenBLAS's warning about OpenMP callers (driver/others/blas_server.c)"),
    Entry("glibc", "produced: DESIGN.md / commit 93a7a11, RLIMIT_STACK 512M + RLIMIT_AS 8G",
          "python: cannot allocate memory for thread-local data: ABORT",
          "ImportError: /lib/x86_64-linux-gnu/libgomp.so.1: cannot allocate memory in "
          "static TLS block",
          "quoted: glibc dl-tls, dlopen of a library with initial-exec TLS (a load error)"),
    Entry("C (pthread_create + strerror)", "produced: a C program creating 200 threads, "
          "pids.max 20", "pthread_create failed: Resource temporarily unavailable",
          "pthread_mutex_trylock: Resource temporarily unavailable",
          "constructed: perror() after a lock that is held, EAGAIN not from a creation"),
    Entry("C++ std::thread (libstdc++)", "produced: g++ program, 200 std::thread, pids.max 20",
          "terminate called after throwing an instance of 'std::system_error'\n"
          "  what():  Resource temporarily unavailable",
          "terminate called after throwing an instance of 'std::system_error'\n"
          "  what():  Operation not permitted",
          "constructed: std::thread in a binary linked without -pthread (old glibc)"),
    Entry("OpenMP (libgomp)", "produced: gcc -fopenmp, num_threads(200), pids.max 20",
          "\nlibgomp: Thread creation failed: Resource temporarily unavailable",
          "libgomp: Invalid value for environment variable OMP_NUM_THREADS",
          "produced: OMP_NUM_THREADS=abc ./omp_c"),
    Entry("OpenMP (LLVM libomp)", "quoted: openmp/runtime/src/i18n/en_US.txt, as printed",
          "OMP: Error #34: System unable to allocate necessary resources for OMP thread:\n"
          "OMP: System error #11: Resource temporarily unavailable\n"
          "OMP: Hint: Try decreasing the value of OMP_NUM_THREADS.",
          "OMP: Warning #96: Cannot form a team with 48 threads, using 4 instead.",
          "quoted: libomp's thread-limit warning (OMP_THREAD_LIMIT); the program goes on"),
    Entry("JVM (OpenJDK 17)", "produced: java, 500 Thread.start(), pids.max 40",
          "[0.076s][warning][os,thread] Failed to start thread \"Unknown thread\" - "
          "pthread_create failed (EAGAIN) for attributes: stacksize: 256k, guardsize: 0k, "
          "detached.\nException in thread \"main\" java.lang.OutOfMemoryError: unable to "
          "create native thread: possibly out of memory or process/resource limits reached",
          "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n"
          "\tat Heap.main(Heap.java:1)",
          "produced: java -Xmx8m, a 800 MB array"),
    Entry("Rust std 1.95", "produced: rustc program, 200 thread::spawn, pids.max 20",
          "thread 'main' (16427) panicked at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/"
          "library/std/src/thread/functions.rs:131:29:\nfailed to spawn thread: Os { code: 11, "
          "kind: WouldBlock, message: \"Resource temporarily unavailable\" }",
          "thread 'main' panicked at src/main.rs:4:38:\ncalled `Result::unwrap()` on an `Err` "
          "value: Os { code: 11, kind: WouldBlock, message: \"Resource temporarily "
          "unavailable\" }", "constructed: Rust's panic format, a non-blocking read unwrapped"),
    Entry("Go runtime", "quoted: runtime/os_linux.go newosproc (and runtime/cgo)",
          "runtime: failed to create new OS thread (have 9 already; errno=11)\n"
          "runtime: may need to increase max user processes (ulimit -u)\n"
          "fatal error: newosproc",
          "panic: read /dev/stdin: resource temporarily unavailable",
          "constructed: Go's panic format, os.File.Read on a non-blocking descriptor"),
    Entry("Node.js 20 (worker_threads)", "produced: node, 200 new Worker(), pids.max 12",
          "node:internal/worker:297\n    this[kHandle].startThread();\n"
          "                  ^\n\nError: EAGAIN\n"
          "    at new Worker (node:internal/worker:297:19)",
          "node:fs:735\n  handleErrorFromBinding(ctx);\n  ^\n\n"
          "Error: EAGAIN: resource temporarily unavailable, read\n"
          "    at Object.readSync (node:fs:735:3)",
          "constructed: Node's error format, fs.readSync on a non-blocking stdin"),
    Entry("Node.js (libuv)", "quoted: node src/node_platform.cc CHECK_EQ, as printed",
          "node[23723]: std::unique_ptr<long unsigned int> node::WorkerThreadsTaskRunner::"
          "DelayedTaskScheduler::Start() at ../../src/node_platform.cc:68\n"
          "  #  Assertion failed: (0) == (uv_thread_create(t.get(), start_thread, this))",
          "node[23723]: ../src/node_file.cc:1534: Assertion failed: (0) == (uv_fs_close("
          "nullptr, &req, fd, nullptr))",
          "constructed: the same CHECK format about a libuv file call"),
    Entry("CPython 3.11 threading", "produced: python, 100 Thread.start(), pids.max 20",
          "Traceback (most recent call last):\n  File \"<string>\", line 3, in <module>\n"
          "  File \"/usr/lib/python3.11/threading.py\", line 964, in start\n"
          "    _start_new_thread(self._bootstrap, ())\nRuntimeError: can't start new thread",
          "Traceback (most recent call last):\n  File \"run.py\", line 9, in <module>\n"
          "    worker.start()\nRuntimeError: threads can only be started once",
          "produced: Thread.start() called twice"),
    Entry("CPython 3.11 subprocess", "produced: python, 20 subprocess.Popen, pids.max 6",
          "  File \"/usr/lib/python3.11/subprocess.py\", line 1883, in _execute_child\n"
          "    self.pid = _fork_exec(\n               ^^^^^^^^^^^\n"
          "BlockingIOError: [Errno 11] Resource temporarily unavailable",
          "  File \"/usr/lib/python3.11/socket.py\", line 706, in readinto\n"
          "    return self._sock.recv_into(b)\n           ^^^^^^^^^^^^^^^^^^^^^^^\n"
          "BlockingIOError: [Errno 11] Resource temporarily unavailable",
          "constructed from the produced 'python -c' one (socketpair, setblocking(False), "
          "recv): the traceback a script shows"),
    Entry("bash 5.2", "produced: bash, 20 background jobs, pids.max 6",
          "bash: fork: retry: Resource temporarily unavailable",
          "bash: line 1: read: read error: 0: Resource temporarily unavailable",
          "constructed: bash's read builtin on a non-blocking stdin"),
    Entry("dash 0.5", "produced: dash, 10 background jobs, pids.max 6",
          "dash: 0: Cannot fork",
          "dash: 1: cannot create /nonexistent/out.log: Directory nonexistent",
          "produced: dash -c 'echo x > /nonexistent/out.log'"),
)
