"""Each runtime's own words for "a thread or process could not be created": the precise
rules exhaustion.py tries before its general one, and the words that say which runtime
spoke. A precise rule is a message only that runtime prints, so it needs no errno beside
it; a rule with a context also needs a line near it (a traceback's frame, a stack)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    runtime: str
    name: str
    pattern: re.Pattern[str]
    context: re.Pattern[str] | None = None  # must match a line within CONTEXT_LINES


def _rule(runtime: str, name: str, pattern: str, context: str | None = None) -> Rule:
    return Rule(runtime, name, re.compile(pattern, re.I),
                re.compile(context, re.I) if context else None)


PRECISE = (
    _rule("TensorFlow", "tf-check", r"creation via pthread_create\(\) failed"),
    _rule("CPython", "cant-start-thread", r"can't start new thread"),
    _rule("CPython", "errno-11-in-fork-frame",
          r"\b(?:BlockingIOError|OSError|IOError|error)\W+\[Errno (?:11|12)\]",
          context=r"\bfork\b|_fork_exec|fork_exec|_execute_child|posix_spawn|"
                  r"_start_new_thread|\.start\(\)|Popen|_launch"),
    _rule("JVM", "native-thread", r"unable to create (?:new )?native thread"),
    _rule("JVM", "gc-thread", r"Cannot create (?:worker )?GC thread"),
    _rule("glibc", "tls", r"cannot allocate memory for thread-local data"),
    _rule("C++ std::thread", "system-error-eagain",
          r"what\(\):\s+(?:thread: )?Resource temporarily unavailable\s*(?:\[system:11\])?$",
          context=r"system_error|terminate called|std::thread|Unhandled exception"),
    _rule("C++ std::thread", "system-error-eagain-alone",
          r"what\(\):\s+Resource temporarily unavailable\s*$"),
    _rule("C++ std::thread", "system-error-code",
          r"system_error\W.*\b(?:generic:11|EAGAIN)\b"),
    _rule("OpenMP (LLVM libomp)", "omp-resources",
          r"OMP: Error #\d+: (?:System unable to allocate necessary resources for OMP thread"
          r"|Cannot create thread)"),
    _rule("Go runtime", "newosproc", r"failed to create new OS thread"),
    _rule("Go runtime", "thread-cap", r"program exceeds \d+-thread limit"),
    _rule("Linux kernel", "pids-controller", r"fork rejected by pids controller"),
    _rule("V8", "platform-check", r"Found: 11\b", context=r"platform-(?:linux|posix)\.cc"),
    _rule(".NET", "thread-start-oom", r"System\.OutOfMemoryException",
          context=r"System\.Threading\.Thread\.Start(?:Internal|Core)"),
    _rule("Node.js", "worker-eagain", r"\bError: EAGAIN\s*$",
          context=r"startThread|new Worker|uv_thread_create"),
    _rule("Node.js (libuv)", "uv-thread-assert", r"Assertion.*\(uv_thread_create"),
    _rule("Rust rayon", "pool-build-io", r"ThreadPoolBuildError\s*\{\s*kind:\s*IOError"),
    _rule("shells", "cannot-fork", r"\bCannot fork\b|\bunable to fork\b|\bcan't fork\b|"
                                   r"\bcould not fork\b|\bcouldn't fork\b|\bfailed to fork\b|"
                                   r"\bfork: retry\b"),
    _rule("pthreads", "create-failed",
          r"pthread_create\W.{0,80}?\bfailed\b|pthread_create\s+(?:has\s+)?failed|"
          r"_beginthreadex failed"),
    _rule("threads (any runtime)", "failed-to-create-thread",
          r"\b(?:failed|unable|cannot|can't|could not|couldn't) to (?:create|start|spawn) "
          r"(?:a |an |the |new |native |worker |os )*thread\b|"
          r"\bthread creation failed\b|\berror (?:while )?creating (?:a )?thread\b|"
          r"\bthread (?:failed|could not be) (?:to )?(?:start|create|spawn)(?:ed)?\b"),
    _rule("boost", "thread-resource-error", r"thread\\?_resource\\?_error"),
)

# Words in a line that say which runtime spoke, for the general rule's matches.
RUNTIMES = (
    ("TensorFlow", r"tensorflow|\btf_"), ("JVM", r"\bjava\b|hotspot|\bjvm\b"),
    ("Go runtime", r"runtime/cgo|\bruntime:|goroutine|fork/exec"),
    ("Rust", r"panicked at|\bOs \{ code"), ("Node.js", r"\bnode\b|child_process|\buv_"),
    ("CPython", r"Traceback|\.py\b|Errno"), ("Ruby", r"\.rb:|Errno::|ThreadError"),
    ("R", r"mcfork"), ("OpenBLAS", r"OpenBLAS"), ("OpenMP (libgomp)", r"libgomp"),
    ("glib", r"GLib|glib:"), ("Perl", r"\bperl\b|\.pm line"), ("PHP", r"\bPHP\b|\(\):"),
    (".NET", r"System\."), ("Erlang", r"rabbitmq|\berts\b"), ("OCaml", r"Unix_error|Sys_error"),
    ("Tcl", r"couldn't fork"), ("git", r"\bgit\b"), ("bash", r"bash"), ("zsh", r"zsh"),
    ("Cygwin", r"\[main\]|cygwin|rebase"), ("boost", r"boost"), ("Ray", r"\braylet\b|ray::"),
)
