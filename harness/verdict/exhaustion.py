"""What counts as thread exhaustion: a thread or process could not be created, in the
words of whichever runtime tried.

Two kinds of rule. Precise ones name a runtime's own message (TensorFlow's CHECK,
HotSpot's "unable to create native thread", CPython's "can't start new thread", ...).
The general one recognises the act, creating a thread, process, worker or pool (the
calls and the verbs and nouns runtimes use for it, in any case), together with a
resource failure: EAGAIN in any spelling or number, ENOMEM or EPERM where the act is a
fork, clone or thread, "out of system resources", a runtime's own cap on threads; on the
same line, or in the frames just above a traceback's error line. Log prefixes
(timestamps, `(pid=N)`, journald fields, `svc |`) are stripped first, so nothing is
anchored at a line's start. An EAGAIN about anything else (a lock, a socket, a
non-blocking read, DNS, HDF5) is not evidence, and neither is a build or configure
log's check for pthread_create. Every match names the runtime and the rule.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import untrusted
from harness.verdict.messages import PRECISE, RUNTIMES

CONTEXT_LINES = 8  # around a bare errno line: the traceback/stack that says who failed
FRAME_LINES = 3  # above an error line: the innermost frames, where the call that failed is

PREFIX = re.compile(r"""^(?:
    \s+ | [>#*|]+\s*
  | \d{4}-\d\d-\d\d[T\s][\d:.,]+(?:Z|[+-]\d\d:?\d\d)?(?:\s+(?:UTC|GMT|[A-Z]{3,4}))?:?\s*
  | (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)?\s*(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)
    \s+\d+\s+[\d:]+\s+[\w.-]+\s+[\w./@-]+(?:\[\d+\])?:\s*
  | \[[^\]\n]{0,80}\]:?\s* | \([\w. -]*pid=\d+\)\s* | \(raylet\)\s* | \(process:\d+\):\s*
  | [\w.-]+\s+\|\s+ | app\[[\w.-]+\]:\s* | remote:\s* | \d{1,2}:\d\d:\d\d\s+
  | [IWEF]\d{4}\s+[\d:.]+\s+\d+\s+[\w./-]+:\d+\]\s* | \d+\s+(?=\S) | [\w.-]+\[\d+\]:\s*
)+""", re.X)

_EAGAIN = (r"\bEAGAIN\b|\bEWOULDBLOCK\b|\bWouldBlock\b|resource\s+temporari|"
           r"resource\s+temporarily\s*$|temporarily\s+unavailable|"
           r"\b(?:errno|error|code|err|ret|returned|is|generic|system|result)\W{0,3}(?:11|35)\b|"
           r"\bfailed\W{0,3}(?:11|35)\s*$|"
           r"\[errno\s+11\]|\(11\)|\b11\s+vs\.\s+0\b|os\s+error\s+(?:11|35)\b|"
           r"ressource\s+ist\s+zur\s+zeit|資源暫時|资源暂时不可用|リソースが一時的に")
_ENOMEM = (r"\bENOMEM\b|cannot\s+allocate\s+memory|\b(?:errno|error)\W{0,3}12\b|"
           r"\[errno\s+12\]|os\s+error\s+12\b|\bfailed:\s+12\b|not\s+enough\s+storage")
_EPERM = r"\bEPERM\b|operation\s+not\s+permitted|os\s+error\s+1\)"
# Scarcity that names its act: a runtime's own word that it could not get a thread for
# its pool, the kernel's process table full, a limit on how many children ran out.
_SELF_ACT = (r"(?:cannot|can't|could\s+not|unable\s+to)\s+al\s?locate\s+(?:a\s+)?"
             r"(?:new\s+)?(?:os\s+)?thread\b|"
             r"too\s+many\s+processes\s+in\s+(?:the\s+)?process\s+table|"
             r"process\s+table\s+(?:is\s+)?full|"
             r"limit\s+(?:of|on)\s+(?:the\s+)?number\s+of\s+(?:child(?:ren)?|process(?:es)?|"
             r"threads?)\b")
SELF_ACT = re.compile(_SELF_ACT, re.I)
_LIMIT = (r"out\s+of\s+system\s+resources|resource\s+limits\s+reached|"
          r"resoucre\s+limits\s+reached|insufficient\s+resources|"
          r"unable\s+to\s+allocate\s+necessary\s+resources|" + _SELF_ACT)
_CAP = (r"exce+ds?\W+(?:\w+\W+){0,2}?\d*-?thread\W*limit|thread\s+limit\s+\(\d+\s+threads\)|"
        r"thread\s+exhaustion|too\s+many\s+simultaneous\s+(?:\w+\s+){0,2}threads|"
        r"gasneti_fatal_threadoverflow")

_THREAD_WORDS = r"(?:threads?|workers?|arbiter|lwp|os\s+thread|thread\s*pool|pool)"
_PROCESS_WORDS = r"(?:process(?:es)?|child(?:ren)?|subprocess|program|task|daemon)"
_VERBS = (r"(?:create|creating|start|starting|spawn|spawning|construct(?:ing)?|launch(?:ing)?|"
          r"run|new|make|making|init(?:ialize)?|fork(?:ing)?|exec(?:ute)?|allocate)")
# Creating a thread: the calls, and a verb next to a noun in either order.
THREAD_ACT = re.compile(
    rf"pthread_create\b|_beginthread(?:ex)?\b|\bCreateThread\b|\w_thread_create\b|"
    rf"\bnewosproc\b|\bthread_resource_error\b|thread::spawn|\bthread\.create\b|"
    rf"thread\s+constructor|\bstd::thread\b|ThreadPoolBuildError|\bstart_new_thread|"
    rf"\b{_VERBS}\W+(?:[\w'\"#]+\W+){{0,3}}?{_THREAD_WORDS}\b|"
    rf"\b{_THREAD_WORDS}\W+(?:[\w'\"#]+\W+){{0,2}}?"
    rf"(?:creation|create|start|spawn|launch|init(?:iali[sz]ation)?)",
    re.I)
# Creating a process: fork and its kin (the calls), and a verb next to a process noun.
PROCESS_CALL = re.compile(
    r"\b(?:\w+_)?(?:v|dup)?fork(?:\(\d?\))?(?=\W|$)|\bdofork\b|\bclone3?\b|\bposix_spawnp?\b|"
    r"\bmcfork\b|fork/exec\b|\bspawn(?:_\w+)?\b|fork\s+rejected|forking\.py|popen_fork",
    re.I)
PROCESS_VERB = re.compile(
    rf"\b{_VERBS}\W+(?:[\w'\"]+\W+){{0,3}}?{_PROCESS_WORDS}\b|"
    r"\b(?:unable|failed|cannot|can't|could not) (?:to )?(?:execute|launch|run|start|spawn|"
    r"exec)\b|"
    # a driver that could not start its sub-program: "running gcc failed: ..."
    r"\b(?:running|executing|starting|launching|invoking)\s+[\w./+-]+\s+failed\b",
    re.I)
# ENOMEM from another call (a cgroup's mkdir, a veth pair) is not the act's failure.
# EAGAIN from a step inside a process's creation that is not the fork (its control
# socket, a connection, a monitor) is not the creation's failure either.
OTHER_CALL = re.compile(r"\bmkdir\b|\bmmap\b|\bsocket\b|\bveth|netlink|\bopen\(|\bqmp\b|"
                        r"\bconnect(?:ion)?\b|\blistener\b|\bbacklog\b|\bhandshake\b", re.I)
EAGAIN = re.compile(_EAGAIN, re.I)
NOMEM = re.compile(_ENOMEM, re.I)
NOPERM = re.compile(_EPERM, re.I)
SCARCE = re.compile(f"{_LIMIT}|{_CAP}", re.I)
# A build or configure log checking for pthread_create is not a failure of the run.
BUILD_CHECK = re.compile(r"Performing\s+(?:C\s+SOURCE\s+FILE\s+)?Test|Looking\s+for\s+"
                         r"pthread|checking\s+for\s+pthread|CMAKE_HAVE_|CheckSymbolExists|"
                         r"Determining\s+if\s+the|undefined\s+reference\s+to|CMakeFiles/",
                         re.I)
ERROR_LINE = re.compile(r"(?:Error|Exception|error|Errno|failed|FATAL|fatal)\b")


@dataclass(frozen=True)
class Match:
    runtime: str
    line: str
    rule: str = ""
    errno: str = "unknown"  # EAGAIN | ENOMEM | EPERM | cap | unknown: what ran out, by the text
    number: int = 0  # the line's number in its file (1-based), where known


def strip_prefix(line: str) -> str:
    """The line without the log prefixes in front of it (timestamps, `(pid=N)`, journald
    fields, `svc |`, glog headers), as the runtime wrote it."""
    return PREFIX.sub("", line, count=1)


def errno_of(text: str) -> str:
    """What the failure says ran out: EAGAIN (a task limit, RLIMIT_NPROC, threads-max),
    ENOMEM (address space, pid_max), EPERM (a seccomp or container policy), a runtime's
    own cap, or unknown."""
    for name, pattern in (("EAGAIN", EAGAIN), ("ENOMEM", NOMEM), ("EPERM", NOPERM),
                          ("cap", re.compile(_CAP, re.I)), ("EAGAIN", SCARCE)):
        if pattern.search(text):
            return name
    return "unknown"


def _runtime(text: str) -> str:
    return next((name for name, words in RUNTIMES if re.search(words, text, re.I)),
                "a runtime the text does not name")


# A noun or call every act has (lowercased, plain: the act's own regexes are slow).
ACT_HINT = re.compile(r"thread|fork|spawn|clone|worker|pool|arbiter|lwp|process|child|program|"
                      r"task|daemon|exec|launch|start|\brun|newosproc|createthread|_beginthread")


def _general(line: str, above: list[str]) -> str | None:
    """The general rule's name when this line says a thread or process could not be made
    for want of a resource (or the frames just above an error line say what was made)."""
    if not ACT_HINT.search(line.lower()):
        if ERROR_LINE.search(line) and (EAGAIN.search(line) or NOMEM.search(line)) \
                and any(_act(a) for a in above):
            return "frame+errno"
        return None
    if SELF_ACT.search(line):
        return "act+scarce"
    thread, call = THREAD_ACT.search(line), PROCESS_CALL.search(line)
    process = call or PROCESS_VERB.search(line)
    if SCARCE.search(line) and (thread or process or re.search(_CAP, line, re.I)):
        return "act+scarce"
    if (thread or call or (process and not OTHER_CALL.search(line))) and EAGAIN.search(line):
        return "act+eagain"
    if NOMEM.search(line) and (thread or call or (process and not OTHER_CALL.search(line))) \
            and not re.search(r"\bpool\b", line, re.I):
        return "act+enomem"
    if thread and NOPERM.search(line):
        return "thread+eperm"
    if ERROR_LINE.search(line) and (EAGAIN.search(line) or NOMEM.search(line)) \
            and any(_act(a) for a in above):
        return "frame+errno"
    return None


def _act(line: str) -> bool:
    return bool(ACT_HINT.search(line.lower()) and (
        THREAD_ACT.search(line) or PROCESS_CALL.search(line) or PROCESS_VERB.search(line)))


# What a line must hold before any rule is tried on it: some word of failure (every rule
# needs one). Cheap, and most lines of a big log, however much they talk of threads and
# workers, have none.
MAYBE = re.compile(  # on the lowercased line: without re.I, ~10x faster on big logs
    r"fail|unabl|cannot|can't|could|error|exce|reject|exhaust|eagain|wouldblock|resource|"
    r"ressource|memory|permitted|errno|code|found|vs\.|outofmemory|assertion|threadpoolbuild|"
    r"retry|os error|storage|limit|overflow|too many|process table|資源|资源|リソース")


# ...and a word only a precise rule's message has, or a resource failure's word on it or on
# the next line (a failure about a file or a batch, however much it talks of workers, is
# not tried at all).
HINT = re.compile(r"thread|fork|what\(\)|found: 11|outofmemoryexception|system_error|eagain|"
                  r"omp: error")
SCARCITY = re.compile(r"eagain|wouldblock|resource|ressource|memory|errno|permitted|code|vs\.|"
                      r"limit|exhaust|storage|overflow|simultaneous|not enough|process table|"
                      r"al ?locate thread|failed \d+\s*$|資源|资源|リソース")


def _candidate(window: deque[str], centre: int) -> bool:
    low = window[centre].lower()
    if MAYBE.search(low) is None:
        return False
    if HINT.search(low) or SCARCITY.search(low):
        return True
    return centre + 1 < len(window) and SCARCITY.search(window[centre + 1].lower()) is not None


def _windows(lines: Iterable[str]) -> Iterator[tuple[int, int, deque[str]]]:
    """(line number, its index in the window, the window) for every line worth judging,
    streaming (logs can be hundreds of MB): the window holds CONTEXT_LINES on either side,
    no more, as the lines were written (prefixes are stripped when a line is judged)."""
    window: deque[str] = deque(maxlen=2 * CONTEXT_LINES + 1)
    number = 0
    for line in lines:
        number += 1
        window.append(line.rstrip("\n"))
        if len(window) > CONTEXT_LINES and _candidate(window, len(window) - 1 - CONTEXT_LINES):
            yield number - CONTEXT_LINES, len(window) - 1 - CONTEXT_LINES, window
    first = number - len(window) + 1
    for centre in range(max(0, len(window) - CONTEXT_LINES), len(window)):
        if _candidate(window, centre):
            yield first + centre, centre, window


def _judge(window: deque[str], centre: int) -> Match | None:
    line = strip_prefix(window[centre])
    if BUILD_CHECK.search(line):
        return None
    around: list[str] = []  # the whole window, stripped, only when a rule needs it

    def whole() -> list[str]:
        if not around:
            around.extend(strip_prefix(x) for x in window)
        return around

    for rule in PRECISE:
        if rule.pattern.search(line) and (
                rule.context is None or any(rule.context.search(a) for a in whole())):
            return Match(rule.runtime, line.strip()[:300], rule.name, errno_of(line))
    frames = [strip_prefix(window[i]) for i in range(max(0, centre - FRAME_LINES), centre)]
    name, said = _general(line, frames), line
    if name is None and centre + 1 < len(window) and _act(line):
        said = f"{line} {strip_prefix(window[centre + 1])}"  # the act here, the errno next
        name = _general(said, []) and "act+errno-next-line"
    if name is None:
        return None
    return Match(_runtime(" ".join(whole())), line.strip()[:300], f"general:{name}",
                 errno_of(said))


def find_all(lines: Iterable[str]) -> Iterator[Match]:
    """Every line that says a thread or process could not be created, with its number."""
    for number, centre, window in _windows(lines):
        if (found := _judge(window, centre)) is not None:
            yield Match(found.runtime, found.line, found.rule, found.errno, number)


def find_in_lines(lines: Iterable[str]) -> Match | None:
    """The first line that says a thread or process could not be created."""
    return next(find_all(lines), None)


def find(paths: Iterable[str | Path]) -> Match | None:
    """find_in_lines over each log in turn (stderr first: that is where runtimes say it)."""
    for path in paths:
        if found := find_in_lines(untrusted.head_and_tail_lines(path)):
            return found
    return None
