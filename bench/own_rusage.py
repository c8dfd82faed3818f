"""`python own_rusage.py REPORT CMD...`: runs CMD as this process's child and writes CMD's own
rusage (peak RSS in KiB, CPU seconds) to REPORT as JSON; exits with CMD's exit status.

Why: on Linux a process starts with its parent's resident set counted in its peak RSS (the
memory it was forked from), so a plugin spawned by the bench driver never reports less than
the driver's own RSS. Forked from this small process instead, the plugin's figure is its own.
"""

import json
import os
import signal
import sys


def main() -> int:
    report, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"own_rusage: cannot run {argv[0]}: {exc}", file=sys.stderr)
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w") as out:
        json.dump(
            {"maxrss_kib": usage.ru_maxrss, "cpu_seconds": usage.ru_utime + usage.ru_stime}, out
        )
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: end the same way, so the caller sees the same status
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
