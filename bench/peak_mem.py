#!/usr/bin/env python3
"""Runs a command and prints its peak memory, split as Linux counts it (/proc/PID/status, sampled every 50 ms):
RssAnon is memory the process owns (its heap); RssFile is pages of files it maps (the command's memory-mapped
features and activations among them), which the kernel drops and reads again under memory pressure; VmHWM is
their sum's peak as `/usr/bin/time -v` reports it. The command's own output passes through.

    python3 bench/peak_mem.py -- ajuste train big/ --mode head --out model
"""
import subprocess
import sys
import time


def status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem", "VmHWM"):
                    fields[key] = int(value.split()[0])  # kB
    except (FileNotFoundError, ProcessLookupError):
        pass
    return fields


def main():
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    start = time.time()
    proc = subprocess.Popen(args)
    peak = {}
    while proc.poll() is None:
        for key, kb in status(proc.pid).items():
            peak[key] = max(peak.get(key, 0), kb)
        time.sleep(0.05)
    seconds = time.time() - start
    mb = {key: kb / 1024 for key, kb in peak.items()}
    print(
        f"peak memory: anonymous {mb.get('RssAnon', 0):.0f} MB, mapped files {mb.get('RssFile', 0):.0f} MB, "
        f"VmHWM {mb.get('VmHWM', 0):.0f} MB; {seconds:.1f} s; exit {proc.returncode}",
        file=sys.stderr,
    )
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
